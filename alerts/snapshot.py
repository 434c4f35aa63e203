"""One evaluation's view of the city: each input read once, only when a rule needs it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Final

import numpy as np
import psycopg

from store import alerts_inputs, lot_status
from store.alerts_inputs import Columns
from streetsense.hours import OpeningStatus
from streetsense.lot_status import lot_status as resolve_status

STEP: Final = timedelta(minutes=5)


class Snapshot:
    """The inputs of one evaluation at `now`, read on first use."""

    def __init__(self, conn: psycopg.Connection, now: datetime, timezone: str = "UTC") -> None:
        self.conn = conn
        self.now = now
        self.epoch = now.timestamp()
        self.timezone = timezone
        self._intervals: dict[int, Columns] = {}

    @cached_property
    def closed_lots(self) -> frozenset[str]:
        """Lots closed now (by their opening hours or an operator): never 'full' or 'filling'."""
        overrides = lot_status.read_overrides(self.conn)
        return frozenset(
            lot_id
            for lot_id, _, hours in lot_status.lot_hours(self.conn)
            if resolve_status(hours, overrides.get(lot_id), self.now, self.timezone).status
            is OpeningStatus.CLOSED
        )

    @cached_property
    def lots(self) -> Columns:
        """Active lots with occupancy and data times."""
        return alerts_inputs.lots(self.conn)

    @cached_property
    def segments(self) -> Columns:
        """Active segments with capacity and speed limit."""
        return alerts_inputs.segments(self.conn)

    def devices(self, condition: str, limit: object = None, ids: object = None) -> Columns:
        """Return the active devices meeting a condition (store.alerts_inputs.DEVICE_CONDITIONS)."""
        return alerts_inputs.devices(self.conn, condition, limit, ids)

    @cached_property
    def last_bucket(self) -> datetime:
        """The start of the newest complete 5-minute interval."""
        step = STEP.total_seconds()
        return datetime.fromtimestamp(self.epoch // step * step, UTC) - STEP

    def intervals(self, count: int) -> Columns:
        """Return the last `count` complete 5-minute intervals of every active segment."""
        if count in self._intervals:
            return self._intervals[count]
        end = self.last_bucket + STEP
        wider = [k for k in self._intervals if k > count]
        if wider:  # a rule read more intervals already: keep the newest `count`
            cols = self._intervals[min(wider)]
            keep = cols["bucket"] >= (end - STEP * count).timestamp()
            found = {name: values[keep] for name, values in cols.items()}
        else:
            found = alerts_inputs.segment_intervals(self.conn, end - STEP * count, end)
        self._intervals[count] = found
        return found

    def traffic_readings(self, start: float, ids: list[str]) -> Columns:
        """Return some segments' raw traffic readings starting from `start` (epoch s) until
        now, lanes of one start summed (store.alerts_inputs.segment_readings)."""
        return alerts_inputs.segment_readings(
            self.conn, datetime.fromtimestamp(start, UTC), self.now, ids
        )

    def segments_reading_beyond(
        self, start: float, speed_below: dict[str, float], occupancy_above: float
    ) -> list[str]:
        """Return the segments with a lane's reading since `start` (epoch s) slower than their
        bound or more occupied (store.alerts_inputs.segments_reading_beyond)."""
        return alerts_inputs.segments_reading_beyond(
            self.conn, datetime.fromtimestamp(start, UTC), self.now, speed_below, occupancy_above
        )

    def speed_band_at(self, at: list[datetime], ended_by: datetime) -> tuple[Columns, int | None]:
        """Speed forecasts at the given 5-minute steps, all from the newest run whose data ended
        by `ended_by` (and that run's id; None: no forecast yet)."""
        return alerts_inputs.forecast_band(self.conn, "speed", at, ended_by)

    def recurrent_lows(
        self,
        intervals: int,
        shift: int,
        weeks: int,
        min_vehicles: float,
        last: datetime,
        ids: list[str] | None = None,
    ) -> Columns:
        """Return per segment and judged 5-minute step (the last `intervals` up to `last`) the
        speed it fell to near that time of week in at least two of the past `weeks` weeks
        (store.alerts_inputs.recurrent_lows)."""
        return alerts_inputs.recurrent_lows(
            self.conn, last, intervals, shift, weeks, min_vehicles, ids
        )

    def stale_segments(self, after: timedelta) -> dict[str, float]:
        """Return the active segments without data since `after` ago, with their newest data
        time (epoch s) within the last week (NaN: none)."""
        recent = alerts_inputs.segment_latest(self.conn, self.now - after - STEP)
        fresh = set(recent["id"][recent["data_at"] >= self.epoch - after.total_seconds()])
        stale = [s for s in self.segments["id"] if s not in fresh]
        if not stale:
            return {}
        older = alerts_inputs.segment_latest(self.conn, self.now - timedelta(days=7), stale)
        found = dict(zip(older["id"].tolist(), older["data_at"].tolist(), strict=True))
        return {s: found.get(s, float("nan")) for s in stale}

    def clock_suspects(self, window: timedelta) -> dict[str, float]:
        """Return flagged readings per device received within the window."""
        cols = alerts_inputs.clock_suspects(self.conn, self.now - window)
        return dict(zip(cols["id"].tolist(), cols["flagged"].tolist(), strict=True))

    def spot_activity(self, window: timedelta) -> Columns:
        """Return per spot sensor its readings and whether it changed within the window."""
        return alerts_inputs.spot_activity(self.conn, self.now - window)

    def fill_forecast(self, within: timedelta, above: float) -> Columns:
        """Return per lot the forecast's highest lower edge and first time at `above`."""
        return alerts_inputs.fill_forecast(self.conn, self.now, within, above)


def index_of(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Return the position of each wanted id in `ids` (sorted), -1 where absent."""
    if len(ids) == 0:
        return np.full(len(wanted), -1)
    pos = np.searchsorted(ids, wanted)
    pos = np.clip(pos, 0, len(ids) - 1)
    return np.where(ids[pos] == wanted, pos, -1)
