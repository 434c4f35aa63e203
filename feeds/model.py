"""What the feeds publish: lot and segment views (aggregates only) and how they are derived."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from streetsense.hours import OpeningStatus
from streetsense.lot_checks import Check

HORIZONS_MIN: Final = (15, 30, 60)


@dataclass(frozen=True, slots=True)
class Unavailable:
    """Why an item has no forecast: a code for apps and a sentence for people.

    Codes: `pending` (no forecast tables), `no_recent_run` (no run covers the next hour),
    `closed` (a lot closed at every horizon) and the analytics job's own reasons for not
    forecasting a series (`no_data`, `too_short`, `constant`, `over_capacity`; m014;
    `capacity_changed`, m015).
    """

    code: str
    reason: str


FORECAST_PENDING: Final = Unavailable(
    "pending", "forecasts are not published yet: the analytics forecast tables are not installed"
)


class Trend(StrEnum):
    """Where a lot is heading compared with 15 minutes ago."""

    FILLING = "filling"
    EMPTYING = "emptying"
    STEADY = "steady"


class Congestion(StrEnum):
    """Level of service of a segment, from its speed against the limit."""

    FREE = "free"
    MODERATE = "moderate"
    HEAVY = "heavy"
    SEVERE = "severe"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Forecast:
    """Expected free spaces (lots), vehicles or speed (segments) at +15/+30/+60 minutes.

    `low` and `high` bound the 80% band at each horizon. `statuses` holds a lot's opening
    status at each horizon: a horizon at which the lot is closed has no value (a closed lot
    is never forecast as full). `reason_code` says why there are no values (`Unavailable`).
    `start` is when the horizons count from; `anchored_at` the time of the live value the
    forecast was re-anchored on (None: it was not).
    """

    values: tuple[float | None, ...]
    issued_at: datetime | None
    reason: str | None
    reason_code: str | None = None
    statuses: tuple[OpeningStatus, ...] = ()
    low: tuple[float | None, ...] = ()
    high: tuple[float | None, ...] = ()
    start: datetime | None = None
    anchored_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CategoryView:
    """Capacity and occupancy of one space category of a lot.

    `occupied` is None when no sensor watches these spaces (a gate counter counts the whole
    lot, not its categories).
    """

    category: str
    capacity: int
    occupied: int | None
    closed: bool = False

    @property
    def available(self) -> int | None:
        """Free spaces of the category; None when unknown or the lot is closed."""
        if self.occupied is None or self.closed:
            return None
        return max(0, self.capacity - self.occupied)


NO_FORECAST: Final = Forecast(values=(None,) * len(HORIZONS_MIN), issued_at=None, reason=None)


@dataclass(frozen=True, slots=True)
class LotView:
    """A lot as the feeds show it."""

    id: str
    name: str
    kind: str
    area: str
    lat: float
    lon: float
    capacity: int
    occupied: int | None
    observed_at: datetime | None
    stale: bool
    trend: Trend | None
    forecast: Forecast
    status: OpeningStatus = OpeningStatus.OPEN
    status_source: str = "opening_hours"
    status_reason: str = ""
    status_until: datetime | None = None
    opening_hours: str = ""
    categories: tuple[CategoryView, ...] = ()
    facts: dict[str, Any] = field(default_factory=dict, hash=False)
    checks: tuple[Check, ...] = ()

    @property
    def closed(self) -> bool:
        """Tell whether the lot is closed now (by its hours or an operator)."""
        return self.status is OpeningStatus.CLOSED

    @property
    def available(self) -> int | None:
        """Free spaces, never below zero or above capacity; None for a closed lot (never 0:
        a closed lot is not full) and until a sensor reported."""
        if self.occupied is None or self.closed:
            return None
        return max(0, self.capacity - self.occupied)

    @property
    def full(self) -> bool:
        """Tell whether the lot is open and has no free space."""
        return self.available == 0

    def category(self, name: str) -> CategoryView | None:
        """Return one category of the lot, if it has those spaces."""
        return next((c for c in self.categories if c.category == name), None)

    @property
    def occupancy(self) -> float | None:
        """Occupied share of the capacity, 0-1."""
        if self.occupied is None:
            return None
        return round(min(self.occupied, self.capacity) / self.capacity, 4)

    def change_key(self) -> tuple[object, ...]:
        """Return what subscribers are told about when it changes."""
        return (
            self.occupied, self.stale, self.trend, self.capacity, self.name, self.kind,
            self.status, self.status_reason, self.categories, self.checks,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class SegmentView:
    """A road segment as the feeds show it."""

    id: str
    name: str
    direction: str
    area: str
    coordinates: tuple[tuple[float, float], ...]
    speed_limit_kmh: float
    capacity_vph: float
    bucket: datetime | None
    vehicle_count: float | None
    mean_speed: float | None
    detector_occupancy: float | None
    stale: bool
    forecast: Forecast
    speed_forecast: Forecast = NO_FORECAST

    @property
    def flow_vph(self) -> float | None:
        """Vehicles per hour, from the 5-minute count."""
        return None if self.vehicle_count is None else round(self.vehicle_count * 12, 1)

    @property
    def congestion(self) -> Congestion:
        """Level of service from the speed ratio (no speed: from detector occupancy)."""
        return congestion_level(self.mean_speed, self.speed_limit_kmh, self.detector_occupancy)


def congestion_level(
    mean_speed: float | None, speed_limit: float, detector_occupancy: float | None
) -> Congestion:
    """Classify a segment: speed below 80/50/25 % of the limit is moderate/heavy/severe."""
    if mean_speed is not None and speed_limit > 0:
        ratio = mean_speed / speed_limit
        for limit, level in ((0.25, Congestion.SEVERE), (0.5, Congestion.HEAVY)):
            if ratio < limit:
                return level
        return Congestion.MODERATE if ratio < 0.8 else Congestion.FREE
    if detector_occupancy is not None:
        # Loop occupancy above ~30 % is the usual threshold of unstable flow.
        if detector_occupancy >= 50:
            return Congestion.SEVERE
        if detector_occupancy >= 30:
            return Congestion.HEAVY
        return Congestion.MODERATE if detector_occupancy >= 15 else Congestion.FREE
    return Congestion.UNKNOWN


def trend_of(occupied: int | None, earlier: float | None, capacity: int) -> Trend | None:
    """Compare occupied spaces now with 15 minutes ago; a change under 3 % of capacity is steady."""
    if occupied is None or earlier is None:
        return None
    threshold = max(1.0, 0.03 * capacity)
    change = occupied - earlier
    if change >= threshold:
        return Trend.FILLING
    if change <= -threshold:
        return Trend.EMPTYING
    return Trend.STEADY
