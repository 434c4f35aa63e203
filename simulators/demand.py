"""Demand over time: daily and weekly profiles, holidays, events and weather-like shocks.

Everything here is a pure function of the time (epoch seconds, numpy arrays) and the seed, so
a city generated in hourly chunks is the same as one generated at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from simulators.city import Character, SimSegment

Array = npt.NDArray[np.float64]
# Day types: 0 working day, 1 Saturday, 2 Sunday or public holiday.
WORKDAY, SATURDAY, SUNDAY = 0, 1, 2
EVENT_FILL = 0.97
# Segments closer than this to the venue carry event traffic.
EVENT_RADIUS_M = 3_000.0


@dataclass(frozen=True, slots=True)
class Event:
    """An event at the city's venue: lots fill before it and empty after it."""

    start: datetime
    duration_h: float = 2.5
    draw: float = 1.0  # 1.0 fills the venue's lots

    @property
    def end(self) -> datetime:
        """When the event ends."""
        return self.start + timedelta(hours=self.duration_h)


def default_holidays(years: range) -> frozenset[date]:
    """Return the fixed-date public holidays most European cities share."""
    days = [(1, 1), (5, 1), (12, 24), (12, 25), (12, 26), (12, 31)]
    return frozenset(date(year, month, day) for year in years for month, day in days)


@dataclass(frozen=True, slots=True)
class Calendar:
    """Local time, holidays, events and weather of one city."""

    seed: int = 1
    timezone: str = "UTC"
    holidays: frozenset[date] = field(default_factory=lambda: default_holidays(range(2000, 2100)))
    events: tuple[Event, ...] | None = None  # None: a match most Saturdays, concerts some weeks

    def local_hours(self, times: Array) -> tuple[Array, npt.NDArray[np.int64]]:
        """Return local hour of day (fractional) and day type for each epoch time."""
        zone = ZoneInfo(self.timezone)
        hour_index = np.floor(times / 3600.0).astype(np.int64)
        unique, inverse = np.unique(hour_index, return_inverse=True)
        offsets = np.empty(unique.size)
        day_types = np.empty(unique.size, dtype=np.int64)
        for i, hour in enumerate(unique.tolist()):
            local = datetime.fromtimestamp(hour * 3600, UTC).astimezone(zone)
            offsets[i] = local.utcoffset().total_seconds()  # type: ignore[union-attr]
            day_types[i] = self._day_type(local.date())
        local_seconds = times + offsets[inverse]
        # Day type must follow the local day, which can differ from the hour's at midnight.
        hours = (local_seconds % 86_400.0) / 3600.0
        return hours, day_types[inverse]

    def _day_type(self, day: date) -> int:
        if day in self.holidays or day.weekday() == 6:
            return SUNDAY
        return SATURDAY if day.weekday() == 5 else WORKDAY

    def events_between(self, start: float, end: float) -> list[Event]:
        """Return the events that overlap [start - 1 day, end + 1 day] (epoch seconds)."""
        low = datetime.fromtimestamp(start, UTC) - timedelta(days=1)
        high = datetime.fromtimestamp(end, UTC) + timedelta(days=1)
        if self.events is not None:
            return [e for e in self.events if e.end >= low and e.start <= high]
        return self._scheduled_events(low, high)

    def _scheduled_events(self, low: datetime, high: datetime) -> list[Event]:
        zone = ZoneInfo(self.timezone)
        found: list[Event] = []
        day = low.astimezone(zone).date()
        while day <= high.astimezone(zone).date():
            draw = np.random.default_rng([self.seed, day.toordinal(), 7]).random()
            event = None
            if day.weekday() == 5 and draw < 0.8:  # home matches on most Saturdays
                event = Event(datetime(day.year, day.month, day.day, 15, tzinfo=zone), 2.0)
            elif day.weekday() == 2 and draw < 0.35:  # a midweek concert now and then
                event = Event(datetime(day.year, day.month, day.day, 19, 30, tzinfo=zone), 3.0)
            if event is not None and low <= event.start <= high:
                found.append(event)
            day += timedelta(days=1)
        return found

    def weather(self, times: Array) -> tuple[Array, Array]:
        """Return (demand factor, road capacity factor) per time: rainy days and random shocks."""
        days = np.floor(times / 86_400.0).astype(np.int64)
        unique, inverse = np.unique(days, return_inverse=True)
        demand = np.empty(unique.size)
        capacity = np.empty(unique.size)
        for i, day in enumerate(unique.tolist()):
            rng = np.random.default_rng([self.seed, day, 11])
            rainy = rng.random() < 0.2
            demand[i] = float(np.exp(rng.normal(0.0, 0.05))) * (0.93 if rainy else 1.0)
            capacity[i] = 0.85 if rainy else 1.0
        # Hour-to-hour shocks (a tram strike, a closed bridge) on top of the daily weather.
        hourly = _hourly_shocks(self.seed, np.floor(times / 3600.0).astype(np.int64))
        return demand[inverse] * np.exp(hourly), capacity[inverse]


def _hourly_shocks(seed: int, hours: npt.NDArray[np.int64]) -> Array:
    unique, inverse = np.unique(hours, return_inverse=True)
    values = np.array(
        [np.random.default_rng([seed, h, 13]).normal(0.0, 0.03) for h in unique.tolist()]
    )
    return values[inverse]


def _bump(hours: Array, centre: float, width: float) -> Array:
    distance = np.abs(hours - centre)
    distance = np.minimum(distance, 24.0 - distance)  # the day wraps at midnight
    return np.exp(-0.5 * (distance / width) ** 2)


def _plateau(hours: Array, start: float, end: float, ramp: float = 0.6) -> Array:
    rise = 1.0 / (1.0 + np.exp(-(hours - start) / ramp))
    fall = 1.0 / (1.0 + np.exp(-(end - hours) / ramp))
    return rise * fall


def parking_profile(character: Character, hours: Array, day_types: npt.NDArray[np.int64]) -> Array:
    """Return the expected share of a lot's spaces occupied, before events and weather."""
    h = hours
    if character is Character.OFFICE:
        work = 0.05 + 0.85 * _plateau(h, 8.0, 17.2, 0.7) - 0.08 * _bump(h, 12.5, 0.6)
        saturday = 0.1 + 0.12 * _bump(h, 12.0, 3.0)
        sunday = 0.06 + 0.04 * _bump(h, 13.0, 3.0)
    elif character is Character.RETAIL:
        work = 0.08 + 0.3 * _plateau(h, 9.0, 19.5) + 0.35 * _bump(h, 12.5, 1.0)
        work = work + 0.4 * _bump(h, 17.0, 1.4)
        saturday = 0.08 + 0.85 * _plateau(h, 9.5, 17.5, 0.8)
        sunday = 0.06 + 0.3 * _bump(h, 14.0, 2.5)
    elif character is Character.RESIDENTIAL:
        work = 0.9 - 0.5 * _plateau(h, 8.0, 17.0, 0.9)
        saturday = 0.88 - 0.3 * _bump(h, 13.5, 3.0)
        sunday = 0.9 - 0.22 * _bump(h, 15.0, 3.0)
    else:
        work = 0.05 + 0.1 * _bump(h, 13.0, 3.0)
        saturday = 0.06 + 0.1 * _bump(h, 14.0, 3.0)
        sunday = 0.05 + 0.08 * _bump(h, 14.0, 3.0)
    return np.select([day_types == WORKDAY, day_types == SATURDAY], [work, saturday], sunday)


def traffic_profile(inbound: bool, hours: Array, day_types: npt.NDArray[np.int64]) -> Array:
    """Return traffic demand as a share of a segment's capacity, before events and weather."""
    h = hours
    morning, evening = (0.85, 0.4) if inbound else (0.4, 0.85)
    work = 0.03 + 0.3 * _plateau(h, 6.5, 20.5, 0.8) + 0.22 * _bump(h, 12.5, 1.5)
    work = work + morning * _bump(h, 8.0, 0.9) + evening * _bump(h, 17.0, 1.2)
    saturday = 0.04 + 0.5 * _bump(h, 13.0, 3.2)
    sunday = 0.03 + 0.35 * _bump(h, 14.5, 3.2)
    return np.select([day_types == WORKDAY, day_types == SATURDAY], [work, saturday], sunday)


def event_fill(events: list[Event], times: Array) -> Array:
    """Return the venue occupancy the events demand at each time (0 outside events)."""
    fill = np.zeros_like(times)
    for event in events:
        start, end = event.start.timestamp(), event.end.timestamp()
        # Fans arrive over the two hours before kick-off and leave within an hour of the end.
        rising = np.clip((times - (start - 7_200.0)) / 6_300.0, 0.0, 1.0)
        falling = np.clip(1.0 - (times - end) / 3_600.0, 0.0, 1.0)
        fill = np.maximum(fill, EVENT_FILL * event.draw * np.minimum(rising, falling))
    return fill


def event_traffic(events: list[Event], segment: SimSegment, times: Array) -> Array:
    """Return the extra demand (share of capacity) events put on a segment."""
    extra = np.zeros_like(times)
    if segment.venue_distance_m > EVENT_RADIUS_M:
        return extra
    closeness = 1.0 - segment.venue_distance_m / EVENT_RADIUS_M
    for event in events:
        start, end = event.start.timestamp(), event.end.timestamp()
        peak = start - 3_000.0 if segment.inbound else end + 1_200.0
        width = 2_400.0 if segment.inbound else 1_500.0
        extra += 0.9 * event.draw * closeness * np.exp(-0.5 * ((times - peak) / width) ** 2)
    return extra
