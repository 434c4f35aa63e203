"""Read a city's special periods (school holidays, events) from an iCalendar or CSV file.

Two formats, chosen by the file's suffix:
- `.ics` (RFC 5545): each VEVENT's DTSTART and DTEND (exclusive, as the standard says; a
  DURATION of days or weeks instead is accepted; neither: one day), SUMMARY as the name and the
  first CATEGORIES value as the kind. Dates (`VALUE=DATE`) or date-times, whose day is taken.
- `.csv`: the header `name,start,end` and optionally `kind`; ISO dates, `end` is the last day
  (inclusive, as school holidays are published).

Periods of one kind (default `special`) share one estimated effect. A bad file is refused
whole, with the file, line and fix named: a wrong calendar silently half-read would bend
forecasts without anyone noticing.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from streetsense.errors import ConfigError

# A school-holiday calendar for decades is a few kilobytes; anything this large is not one.
MAX_BYTES = 1_000_000
MAX_PERIODS = 5_000
# Longer than a year is not a special period but a new normal.
MAX_DAYS = 366
FIRST_YEAR, LAST_YEAR = 1990, 2100
MAX_NAME = 120
DEFAULT_KIND = "special"
_KIND = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,39}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_DURATION = re.compile(r"^P(?:(\d{1,3})W|(\d{1,3})D)$")
_ICS_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})(?:T\d{6}Z?)?$")


class CalendarError(ConfigError):
    """A special-days file is unusable; the message names the file, the line and the fix."""


@dataclass(frozen=True, slots=True)
class Period:
    """Days `first`..`last` (inclusive, local dates) of one special period of a kind."""

    name: str
    kind: str
    first: date
    last: date

    def days(self) -> list[date]:
        """Return every day of the period."""
        return [self.first + timedelta(days=k) for k in range((self.last - self.first).days + 1)]


def read_periods(path: Path) -> tuple[Period, ...]:
    """Return the periods of an .ics or .csv file, oldest first.

    Raises:
        CalendarError: the file is missing, too large, of an unknown kind, or a line is bad.
    """
    suffix = path.suffix.lower()
    if suffix not in (".ics", ".csv"):
        raise CalendarError(f"{path}: unknown calendar format; give an .ics or a .csv file")
    text = _read_text(path)
    periods = _read_ics(path, text) if suffix == ".ics" else _read_csv(path, text)
    return tuple(sorted(periods, key=lambda p: (p.first, p.last, p.kind, p.name)))


def _read_text(path: Path) -> str:
    """Return the file's text, refusing what is too large or not UTF-8."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise CalendarError(f"{path}: cannot read the special-days file ({exc.strerror})") from exc
    if len(data) > MAX_BYTES:
        raise CalendarError(
            f"{path}: larger than {MAX_BYTES:,} bytes; a calendar of special periods is far "
            "smaller: give only the periods (school holidays, events)"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CalendarError(f"{path}, line {line}: not UTF-8 text; save the file as UTF-8") from exc


def _read_csv(path: Path, text: str) -> list[Period]:
    """Return the periods of a CSV with the header name,start,end[,kind]."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip().lower() for name in reader.fieldnames or []]
    missing = [c for c in ("name", "start", "end") if c not in header]
    if missing:
        raise CalendarError(
            f"{path}, line 1: the header lacks {', '.join(missing)}; "
            "write name,start,end (and optionally kind), e.g. Herbstferien,2024-10-14,2024-10-25"
        )
    reader.fieldnames = header
    periods = []
    # A quoted name may span lines: a record is named by the line it starts on.
    line = reader.line_num + 1
    for row in reader:
        if None in row or any(value is None for value in row.values()):
            raise CalendarError(
                f"{path}, line {line}: expected {len(header)} fields; quote names with commas"
            )
        where = f"{path}, line {line}"
        first = _iso_date(row["start"], where, "start")
        last = _iso_date(row["end"], where, "end")
        kind = _kind(row.get("kind") or DEFAULT_KIND, where)
        periods.append(_period(row["name"], kind, first, last, where))
        _count(periods, path)
        line = reader.line_num + 1
    return periods


def _iso_date(text: str, where: str, column: str) -> date:
    """Return an ISO date (YYYY-MM-DD) of a CSV cell."""
    try:
        value = date.fromisoformat(text.strip())
    except ValueError:
        raise CalendarError(
            f"{where}: {column} '{_shown(text)}' is not a date; write it as YYYY-MM-DD"
        ) from None
    return _in_range(value, where)


def _read_ics(path: Path, text: str) -> list[Period]:
    """Return the periods of the VEVENTs of an iCalendar file."""
    if not text.lstrip().upper().startswith("BEGIN:VCALENDAR"):
        raise CalendarError(
            f"{path}, line 1: not an iCalendar file; it must begin with BEGIN:VCALENDAR"
        )
    periods: list[Period] = []
    event: dict[str, tuple[str, str]] | None = None
    start_line = 0
    for line, name, params, value in _content_lines(path, text):
        if name == "BEGIN" and value.upper() == "VEVENT":
            if event is not None:
                raise CalendarError(
                    f"{path}, line {line}: a VEVENT inside a VEVENT; close it with END:VEVENT"
                )
            event, start_line = {}, line
        elif name == "END" and value.upper() == "VEVENT":
            if event is None:
                raise CalendarError(f"{path}, line {line}: END:VEVENT without BEGIN:VEVENT")
            periods.append(_event(event, f"{path}, line {start_line}"))
            _count(periods, path)
            event = None
        elif event is not None and name in (
            "DTSTART",
            "DTEND",
            "DURATION",
            "SUMMARY",
            "CATEGORIES",
            "RRULE",
            "RDATE",
        ):
            event[name] = (params, value)
    if event is not None:
        raise CalendarError(
            f"{path}, line {start_line}: the VEVENT is never closed; add END:VEVENT"
        )
    return periods


def _content_lines(path: Path, text: str) -> list[tuple[int, str, str, str]]:
    """Return (line, NAME, parameters, value) of each unfolded content line."""
    out: list[tuple[int, str, str, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if raw[:1] in (" ", "\t") and out:
            # RFC 5545 folding: a line starting with white space continues the previous one.
            line, name, params, value = out[-1]
            out[-1] = (line, name, params, value + raw[1:])
            continue
        if not raw.strip():
            continue
        head, colon, value = raw.partition(":")
        if not colon:
            raise CalendarError(f"{path}, line {number}: not a NAME:value content line")
        name, _, params = head.partition(";")
        out.append((number, name.strip().upper(), params, value))
    return out


def _event(event: dict[str, tuple[str, str]], where: str) -> Period:
    """Return the period of one VEVENT's properties."""
    if "RRULE" in event or "RDATE" in event:
        raise CalendarError(
            f"{where}: recurring events are not read; list each period as its own VEVENT"
        )
    if "DTSTART" not in event:
        raise CalendarError(f"{where}: the VEVENT has no DTSTART; give its first day")
    first = _ics_date(event["DTSTART"][1], where, "DTSTART")
    if "DTEND" in event:
        end = _ics_date(event["DTEND"][1], where, "DTEND")
        params = {p.strip().upper() for p in event["DTEND"][0].split(";")}
        is_date = "VALUE=DATE" in params or len(event["DTEND"][1].strip()) == 8
        # A date DTEND is the day after the last (RFC 5545); a date-time ends within its day,
        # or on the day before when at midnight. Some producers write DTEND = DTSTART for one day.
        last = end - timedelta(days=1) if is_date or _midnight(event["DTEND"][1]) else end
        last = first if end == first else last
    elif "DURATION" in event:
        last = first + timedelta(days=_duration_days(event["DURATION"][1], where) - 1)
    else:
        last = first
    name = _unescape(event.get("SUMMARY", ("", ""))[1])
    categories = event.get("CATEGORIES", ("", DEFAULT_KIND))[1].split(",")[0]
    return _period(name, _kind(_unescape(categories) or DEFAULT_KIND, where), first, last, where)


def _ics_date(text: str, where: str, name: str) -> date:
    """Return the date of an iCalendar DATE or DATE-TIME value."""
    match = _ICS_DATE.match(text.strip())
    if match is None:
        raise CalendarError(
            f"{where}: {name} '{_shown(text)}' is not a date; write it as YYYYMMDD "
            f"(e.g. {name};VALUE=DATE:20241014)"
        )
    try:
        value = date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        raise CalendarError(f"{where}: {name} '{_shown(text)}' is not a calendar day") from None
    return _in_range(value, where)


def _midnight(text: str) -> bool:
    """Return whether an iCalendar date-time is at 00:00:00."""
    return "T000000" in text.upper()


def _duration_days(text: str, where: str) -> int:
    """Return the days of a DURATION in whole days or weeks (P3D, P2W)."""
    match = _DURATION.match(text.strip().upper())
    if match is None or int(match.group(1) or match.group(2)) == 0:
        raise CalendarError(
            f"{where}: DURATION '{_shown(text)}' must be whole days or weeks, such as P5D or P2W"
        )
    weeks, days = match.group(1), match.group(2)
    return int(weeks) * 7 if weeks else int(days)


def _unescape(text: str) -> str:
    """Return an iCalendar TEXT value without its escapes."""
    return (
        text.replace("\\n", " ")
        .replace("\\N", " ")
        .replace("\\,", ",")
        .replace("\\;", ";")
        .replace("\\\\", "\\")
    )


def _in_range(value: date, where: str) -> date:
    """Return the date if its year is plausible for traffic data."""
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise CalendarError(
            f"{where}: the year {value.year} is outside {FIRST_YEAR}-{LAST_YEAR}; check the date"
        )
    return value


def _kind(text: str, where: str) -> str:
    """Return a period kind: a short word such as school or event."""
    kind = text.strip().lower()
    if not _KIND.match(kind):
        raise CalendarError(
            f"{where}: kind '{_shown(text)}' must be a short word of letters, digits, spaces, "
            "'_', '.' or '-' (such as school or event)"
        )
    return kind


def _period(name: str, kind: str, first: date, last: date, where: str) -> Period:
    """Return a checked period."""
    name = name.strip()
    if _CONTROL.search(name) or len(name) > MAX_NAME:
        raise CalendarError(
            f"{where}: the name '{_shown(name)}' holds control characters or is longer than "
            f"{MAX_NAME} characters; give a plain name such as Herbstferien"
        )
    if last < first:
        raise CalendarError(f"{where}: ends ({last}) before it starts ({first}); swap the dates")
    if (last - first).days + 1 > MAX_DAYS:
        raise CalendarError(
            f"{where}: {(last - first).days + 1} days long; a special period lasts at most "
            f"{MAX_DAYS} days: split it or check the dates"
        )
    return Period(name, kind, first, last)


def _count(periods: list[Period], path: Path) -> None:
    """Refuse a file with more periods than any city's calendar holds."""
    if len(periods) > MAX_PERIODS:
        raise CalendarError(
            f"{path}: more than {MAX_PERIODS} periods; give only the special periods"
        )


def _shown(text: str) -> str:
    """Return user text safe to put in a message: control characters escaped, cut short."""
    shown = text.encode("unicode_escape").decode("ascii")
    return shown if len(shown) <= 60 else shown[:57] + "..."
