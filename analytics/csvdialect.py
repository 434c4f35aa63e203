"""How a series CSV is written: its delimiter, decimal mark, column names and missing values.

Planners export from spreadsheets: a European Excel writes `;` between fields and `,` as the
decimal mark, R writes `NA` for a missing value, and a city's feed names its columns its own
way. The reader takes those as they come, or says in one sentence what it found and how to map
it, instead of failing on the first field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

REQUIRED = ("series_id", "timestamp", "value")
OPTIONAL = ("capacity",)
# Tried in this order; the first that splits the header into the wanted columns is taken.
DELIMITERS = (",", ";", "\t", "|")
# Spellings of a missing value in exports (spreadsheets, R, pandas, databases).
MISSING = frozenset({"", "nan", "na", "n/a", "null", "none", "-"})


class DialectError(ValueError):
    """The header cannot be matched to the columns wanted; the message says what was found."""


@dataclass(frozen=True, slots=True)
class Dialect:
    """The delimiter, whether numbers use a decimal comma, and the index of each column."""

    delimiter: str
    decimal_comma: bool
    index: Mapping[str, int]


def normalise(name: str) -> str:
    """Return a column name compared case-, space- and hyphen-insensitively."""
    return re.sub(r"[\s\-]+", "_", name.strip().strip('"').lower())


def parse_columns(text: str) -> dict[str, str]:
    """Return the mapping of `--columns` ('series_id=garagecode,value=vehiclecount').

    Raises:
        DialectError: a pair is not `ours=theirs` or names a column we do not read.
    """
    mapping: dict[str, str] = {}
    for pair in filter(None, (part.strip() for part in text.split(","))):
        ours, sep, theirs = pair.partition("=")
        ours = normalise(ours)
        if not sep or not theirs.strip():
            raise DialectError(f"--columns: '{pair}' is not NAME=COLUMN, e.g. value=vehiclecount")
        if ours not in (*REQUIRED, *OPTIONAL):
            raise DialectError(
                f"--columns: '{ours}' is not one of {', '.join((*REQUIRED, *OPTIONAL))}"
            )
        mapping[ours] = theirs.strip()
    return mapping


def detect(header_line: str, columns: Mapping[str, str] | None = None) -> Dialect:
    """Return the dialect of a file from its first line.

    Args:
        header_line: the first line of the file, without its line end.
        columns: our column name -> the file's, for files that name them their own way.

    Raises:
        DialectError: no delimiter splits the header into the wanted columns, or a wanted
            column appears twice; the message lists the header found and the fix.
    """
    wanted = {name: normalise((columns or {}).get(name, name)) for name in (*REQUIRED, *OPTIONAL)}
    for delimiter in DELIMITERS:
        names = [normalise(name) for name in header_line.split(delimiter)]
        if all(wanted[name] in names for name in REQUIRED):
            for theirs in wanted.values():
                if names.count(theirs) > 1:
                    raise DialectError(
                        f"column '{theirs}' appears {names.count(theirs)} times in the header; "
                        "keep one or rename the others"
                    )
            index = {
                name: names.index(theirs) for name, theirs in wanted.items() if theirs in names
            }
            return Dialect(delimiter, delimiter != ",", index)
    found = ", ".join(repr(n[:40]) for n in _split_any(header_line)[:12]) or "nothing"
    missing = [wanted[name] for name in REQUIRED if wanted[name] not in _split_any(header_line)]
    raise DialectError(
        f"missing column {', '.join(repr(m) for m in missing)}; the header holds {found}. "
        "The header must be series_id,timestamp,value (optionally ,capacity), separated by "
        "',', ';', tab or '|'; rename the columns or map them, e.g. "
        "--columns series_id=garagecode,timestamp=updatetime,value=vehiclecount"
    )


def _split_any(header_line: str) -> list[str]:
    """Return the header's names split at the delimiter that gives the most of them."""
    split = max((header_line.split(d) for d in DELIMITERS), key=len)
    return [normalise(name) for name in split if name.strip()]


def number(text: str, decimal_comma: bool) -> float:
    """Return the finite number in `text`, NaN for a missing value.

    Raises:
        ValueError: not a number, or not a finite one (inf, or too large for a float).
    """
    field = text.strip()
    if field.lower() in MISSING:
        return math.nan
    if decimal_comma and "," in field and "." not in field:
        field = field.replace(",", ".", 1)
    value = float(field)
    if not math.isfinite(value):
        raise ValueError("not a finite number")
    return value
