"""CSV cells a spreadsheet opens as data, never as a formula; every CSV export writes through here.

A cell starting with `=`, `+`, `-` or `@` (or a tab or carriage return, which some spreadsheets
skip before looking) is run as a formula by Excel, LibreOffice and Google Sheets when the file
is opened: a rejected payload such as `=HYPERLINK("http://evil.example", "click")` would become
a live link in a planner's sheet. Such text gets a leading apostrophe, the mark spreadsheets
themselves use for "text, not a formula" (OWASP, CSV injection). Numbers are written by us and
stay numbers, so a negative value is untouched; booleans are written as in JSON.
"""

from __future__ import annotations

from typing import Final

# The ASCII starts, and their full-width forms, which some spreadsheets also accept.
FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")


def text_cell(text: str) -> str:
    """Return text that a spreadsheet shows as it is (apostrophe before a formula start)."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_cell(value: object) -> object:
    """Return a value ready for `csv.writer`: text neutralised, booleans `true`/`false`."""
    if isinstance(value, str):
        return text_cell(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return value
