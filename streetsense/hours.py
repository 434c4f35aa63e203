"""Opening hours in OpenStreetMap `opening_hours` syntax, evaluated in the city's time zone.

The syntax is parsed by `opening-hours-py` (a maintained, typed binding of the Rust
`opening-hours` crate), imported lazily: the edge installs the kernel without it.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from streetsense.errors import ConfigError

if TYPE_CHECKING:
    from opening_hours import OpeningHours

ALWAYS_OPEN: Final = "24/7"
MAX_LENGTH: Final = 512  # ParkAPI's limit; longer rules are a sign of pasted prose
EXAMPLE: Final = "Mo-Fr 07:00-22:00; Sa 08:00-20:00; Su off"


class OpeningStatus(StrEnum):
    """Whether a lot takes vehicles now (ParkAPI v3 and DATEX II say the same three things)."""

    OPEN = "open"
    CLOSED = "closed"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class HoursState:
    """A lot's state by its opening hours at one moment."""

    status: OpeningStatus
    comment: str
    next_change: datetime | None


def hours_problem(text: str) -> str | None:
    """Return why `text` is not usable opening hours, or None when it is.

    Args:
        text: an OpenStreetMap `opening_hours` value, e.g. "Mo-Fr 08:00-18:00; PH off".
    """
    if len(text) > MAX_LENGTH:
        return f"is {len(text)} characters long; opening hours may have at most {MAX_LENGTH}"
    import opening_hours  # noqa: PLC0415  (lazy: the edge installs the kernel without it)

    parser_error: type[Exception] = opening_hours.ParserError  # type: ignore[attr-defined]
    try:
        opening_hours.OpeningHours(text, auto_country=False, auto_timezone=False)
    except (parser_error, SyntaxError, ValueError) as exc:
        return f"is not OpenStreetMap opening_hours syntax ({_parser_hint(str(exc))}); " + (
            f"write e.g. {EXAMPLE!r}"
        )
    return None


def _parser_hint(message: str) -> str:
    """Turn the parser's multi-line report into 'at character N: expected ...'."""
    where = re.search(r"--> \d+:(\d+)", message)
    expected = next(
        (line.strip().removeprefix("=").strip() for line in message.splitlines()
         if line.strip().startswith("=")),
        "not understood",
    )  # fmt: skip
    return f"at character {where[1]}: {expected}" if where else expected


@functools.lru_cache(maxsize=4096)
def _parsed(text: str, timezone: str, country: str) -> OpeningHours:
    import opening_hours  # noqa: PLC0415

    # The library raises these, but its stubs do not declare them.
    unknown_country: type[Exception] = opening_hours.UnknownCountryError  # type: ignore[attr-defined]
    try:
        return opening_hours.OpeningHours(
            text,
            timezone=zone(timezone),
            country=country.upper() or None,
            auto_country=False,
            auto_timezone=False,
        )
    except unknown_country as exc:
        raise ConfigError(
            f"city.country {country!r} is not a country the holiday calendar knows; use an "
            "ISO 3166 alpha-2 code such as 'DK', or leave it empty"
        ) from exc


@functools.lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """Return the IANA zone `name`.

    Raises:
        ConfigError: the zone is unknown (names city.timezone, the setting that holds it).
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"city.timezone {name!r} is not an IANA time zone; use e.g. 'Europe/Berlin'"
        ) from exc


def hours_state(text: str, moment: datetime, timezone: str, country: str = "") -> HoursState:
    """Evaluate opening hours at `moment` (aware) in the city's zone.

    Args:
        text: validated opening hours ('' means always open).
        moment: an aware time.
        timezone: the city's IANA zone: "Mo-Fr 08:00-18:00" means local time.
        country: ISO 3166 code for public holidays (`PH`); '' when unknown (PH never matches).
    """
    parsed = _parsed(text or ALWAYS_OPEN, timezone, country)
    local = moment.astimezone(zone(timezone))
    state, comment = parsed.state(local)
    change = parsed.next_change(local)
    return HoursState(_status_of(state), comment, change)


def _status_of(state: object) -> OpeningStatus:
    from opening_hours import State  # noqa: PLC0415

    if state == State.OPEN:
        return OpeningStatus.OPEN
    return OpeningStatus.CLOSED if state == State.CLOSED else OpeningStatus.UNKNOWN


@dataclass(frozen=True, slots=True)
class OpenPeriod:
    """One open period of a day in local time: weekday 0 = Monday, "HH:MM:SS" times."""

    weekday: int
    opens: str
    closes: str  # "24:00:00" when open until midnight


def week_schedule(
    text: str, start: datetime, timezone: str, country: str = ""
) -> tuple[OpenPeriod, ...]:
    """Return the open periods of the 7 days from `start`'s local day, split at midnight.

    Publishing formats without OpenStreetMap syntax (schema.org's openingHoursSpecification,
    DATEX II periods) get the coming week as it will be, holidays included.
    """
    local = start.astimezone(zone(timezone))
    return _week(text or ALWAYS_OPEN, local.date().isoformat(), timezone, country)


@functools.lru_cache(maxsize=4096)
def _week(text: str, day: str, timezone: str, country: str) -> tuple[OpenPeriod, ...]:
    from opening_hours import State  # noqa: PLC0415

    tz = zone(timezone)
    first = datetime.fromisoformat(day).replace(tzinfo=tz)
    end = first + timedelta(days=7)
    periods: list[OpenPeriod] = []
    for opens, closes, state, _ in _parsed(text, timezone, country).intervals(first, end):
        if state != State.OPEN:
            continue
        moment = opens
        while moment < closes:
            midnight = datetime.combine(moment.date() + timedelta(days=1), time(), tz)
            until = min(closes, midnight)
            periods.append(
                OpenPeriod(
                    moment.weekday(),
                    moment.strftime("%H:%M:%S"),
                    "24:00:00" if until == midnight else until.strftime("%H:%M:%S"),
                )
            )
            moment = until
    return tuple(periods)


def check_city(timezone: str, country: str) -> None:
    """Fail fast on a city.timezone or city.country the opening hours cannot use.

    Raises:
        ConfigError: names the setting and the fix.
    """
    hours_state("Mo-Fr 08:00-18:00; PH off", datetime.now(zone("UTC")), timezone, country)
