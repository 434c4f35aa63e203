"""The time-range and resolution control every page shares, and local-time display helpers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st
from streamlit.elements.lib.column_types import ColumnConfig

from store.dashboard_reads import TIER_STEP, pick_tier

RANGES: Final = {
    "Last 6 hours": timedelta(hours=6),
    "Last 24 hours": timedelta(days=1),
    "Last 7 days": timedelta(days=7),
    "Last 30 days": timedelta(days=30),
    "Last 90 days": timedelta(days=90),
    "Last 365 days": timedelta(days=365),
    "Custom dates": None,
}
RESOLUTIONS: Final = {"Auto": None, "5 minutes": "5m", "1 hour": "1h", "1 day": "1d"}
DEFAULT_RANGE: Final = "Last 7 days"
# More points than this per series only slows the browser; a finer choice is coarsened.
MAX_POINTS: Final = 5_000
# Widget state is dropped when a page without the widget runs, so the choice is kept here too.
_KEPT = {"range": "_kept_range", "resolution": "_kept_resolution", "dates": "_kept_dates"}


@dataclass(frozen=True, slots=True)
class TimeRange:
    """A half-open UTC range [start, end), its rollup tier and the zone times are shown in."""

    start: datetime
    end: datetime
    tier: str
    timezone: str
    label: str
    # The resolution as chosen, never coarsened: a download has no screen to overload.
    export_tier: str

    @property
    def zone(self) -> ZoneInfo:
        """The city's time zone."""
        return ZoneInfo(self.timezone)


def range_end(now: datetime) -> datetime:
    """Return the end of the current 5-minute bucket, so reads stay cacheable for 5 minutes."""
    floored = now.replace(second=0, microsecond=0, minute=now.minute - now.minute % 5)
    return floored + timedelta(minutes=5)


def resolve_tier(start: datetime, end: datetime, choice: str | None) -> str:
    """Return the chosen tier, or the automatic one, coarsened to stay under MAX_POINTS."""
    tier = choice or pick_tier(start, end)
    order = list(TIER_STEP)
    while (end - start) / TIER_STEP[tier] > MAX_POINTS and tier != order[-1]:
        tier = order[order.index(tier) + 1]
    return tier


def _restore(widget_key: str, default: object) -> None:
    # The callback below has already copied this run's change, so the kept value is current.
    kept = _KEPT[widget_key]
    st.session_state[widget_key] = st.session_state.get(kept, default)


def _keep(widget_key: str) -> None:
    st.session_state[_KEPT[widget_key]] = st.session_state[widget_key]


def time_range(timezone: str, now: datetime | None = None) -> TimeRange:
    """Render the shared sidebar control and return the range it selects."""
    zone = ZoneInfo(timezone)
    end = range_end(now or datetime.now(UTC))
    today = end.astimezone(zone).date()
    _restore("range", DEFAULT_RANGE)
    _restore("resolution", next(iter(RESOLUTIONS)))
    _restore("dates", (today - timedelta(days=7), today))
    with st.sidebar:
        label = st.selectbox(
            "Time range", list(RANGES), key="range", on_change=_keep, args=("range",)
        )
        span = RANGES[label]
        if span is None:
            picked = st.date_input("Dates", key="dates", on_change=_keep, args=("dates",))
            start, end = _dates_to_range(picked, zone, today)
        else:
            start = end - span
        resolution = st.selectbox(
            "Resolution", list(RESOLUTIONS), key="resolution", on_change=_keep, args=("resolution",)
        )
        tier = resolve_tier(start, end, RESOLUTIONS[resolution])
        st.caption(f"Times in {timezone}; data at {tier} resolution.")
    export_tier = RESOLUTIONS[resolution] or pick_tier(start, end)
    return TimeRange(start, end, tier, timezone, label, export_tier)


def _dates_to_range(picked: object, zone: ZoneInfo, today: date) -> tuple[datetime, datetime]:
    days = list(picked) if isinstance(picked, tuple | list) else [picked]
    first = days[0] if days and isinstance(days[0], date) else today
    last = days[-1] if days and isinstance(days[-1], date) else first
    start = datetime.combine(first, time(), zone).astimezone(UTC)
    end = datetime.combine(last + timedelta(days=1), time(), zone).astimezone(UTC)
    return start, end


def local(frame: pd.DataFrame, columns: list[str], timezone: str) -> pd.DataFrame:
    """Return a copy with UTC timestamp columns shown in the city's time zone."""
    shown = frame.copy()
    for column in columns:
        if column in shown:
            shown[column] = pd.to_datetime(shown[column], utc=True).dt.tz_convert(timezone)
    return shown


def when(label: str) -> ColumnConfig:
    """Return the column format of a recent local time: weekday and time of day, no offset."""
    return st.column_config.DatetimeColumn(label, format="ddd HH:mm")
