"""A lot's opening status: its opening hours, unless an operator's override says otherwise."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final, Protocol

from streetsense.errors import RegistryError
from streetsense.hours import OpeningStatus, hours_state

MAX_OVERRIDE: Final = timedelta(days=366)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class StatusSource(StrEnum):
    """What decided a lot's status."""

    HOURS = "opening_hours"
    OVERRIDE = "operator"


@dataclass(frozen=True, slots=True)
class StatusOverride:
    """An operator's decision that a lot is open or closed, whatever its hours say.

    Raises:
        RegistryError: a field is empty, too long, holds control characters, or `until` is
            not after `set_at` or more than a year ahead.
    """

    lot_id: str
    status: OpeningStatus
    reason: str
    set_by: str
    set_at: datetime
    until: datetime | None = None

    def __post_init__(self) -> None:
        if self.status is OpeningStatus.UNKNOWN:
            raise RegistryError("an override sets a lot 'open' or 'closed'; clear it instead")
        for name, value, longest in (("reason", self.reason, 200), ("by", self.set_by, 100)):
            if not value.strip() or len(value) > longest or _CONTROL.search(value):
                raise RegistryError(
                    f"override {name} must be 1 to {longest} characters of plain text "
                    "(who decided and why are kept in the audit log)"
                )
        if self.set_at.tzinfo is None or (self.until is not None and self.until.tzinfo is None):
            raise RegistryError("override times need a time zone, e.g. 2026-12-24T18:00:00Z")
        if self.until is not None and not self.set_at < self.until <= self.set_at + MAX_OVERRIDE:
            raise RegistryError(
                "override --until must lie after now and at most a year ahead; for longer, "
                "change the lot's opening_hours in the registry"
            )

    def active(self, now: datetime) -> bool:
        """Tell whether the override is in force at `now`."""
        return self.until is None or now < self.until


class Override(Protocol):
    """What deciding a status needs of an override (the feeds never see who set it)."""

    @property
    def status(self) -> OpeningStatus:
        """Open or closed."""

    @property
    def reason(self) -> str:
        """Why, in words published with the status."""

    @property
    def until(self) -> datetime | None:
        """When it ends (None: until cleared)."""


@dataclass(frozen=True, slots=True)
class LotStatus:
    """A lot's status now, what decided it, and when the hours change it next."""

    status: OpeningStatus
    source: StatusSource
    reason: str
    next_change: datetime | None


ALWAYS: Final = LotStatus(OpeningStatus.OPEN, StatusSource.HOURS, "open at all times", None)


def lot_status(
    opening_hours: str,
    override: Override | None,
    now: datetime,
    timezone: str,
    country: str = "",
) -> LotStatus:
    """Resolve a lot's status: an active override wins, else its opening hours ('' = 24/7)."""
    if override is not None and (override.until is None or now < override.until):
        return LotStatus(override.status, StatusSource.OVERRIDE, override.reason, override.until)
    if not opening_hours:
        return ALWAYS  # most lots have no hours: skip the parser
    state = hours_state(opening_hours, now, timezone, country)
    reason = state.comment or f"opening hours {opening_hours}"
    change = None if state.next_change is None else state.next_change.astimezone(UTC)
    return LotStatus(state.status, StatusSource.HOURS, reason, change)
