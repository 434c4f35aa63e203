"""Pure DataFrame shaping shared by pages: filters, summaries and their column formats."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

import pandas as pd
import streamlit as st

LOT_SUMMARY_COLUMNS: Final = {
    "occupancy_now": st.column_config.NumberColumn("now", format="percent"),
    "mean_occupancy": st.column_config.NumberColumn("mean", format="percent"),
    "peak_occupancy": st.column_config.NumberColumn("peak", format="percent"),
    "share_above": st.column_config.NumberColumn("time above 85%", format="percent"),
    "turnover_per_spot_day": st.column_config.NumberColumn("turnover /spot/day", format="%.2f"),
    "mean_dwell_min": st.column_config.NumberColumn("mean dwell (min)", format="%.0f"),
}


def filter_places(
    frame: pd.DataFrame, id_column: str, text: str, areas: list[str], kinds: list[str]
) -> pd.DataFrame:
    """Return the rows whose id or name contains text, in the given areas and kinds."""
    keep = pd.Series(True, index=frame.index)
    needle = text.strip().lower()
    if needle:
        keep &= frame[id_column].str.lower().str.contains(needle, regex=False) | frame[
            "name"
        ].str.lower().str.contains(needle, regex=False)
    if areas:
        keep &= frame["area"].isin(areas)
    if kinds and "kind" in frame:
        keep &= frame["kind"].isin(kinds)
    return frame[keep]


def lot_summary(
    pressure: pd.DataFrame, turnover: pd.DataFrame, lots_now: pd.DataFrame
) -> pd.DataFrame:
    """Join per-lot pressure, turnover and current occupancy into one row per lot."""
    now = lots_now[["lot_id", "name", "capacity", "occupancy"]].rename(
        columns={"occupancy": "occupancy_now"}
    )
    summary = now.merge(pressure, on="lot_id", how="inner")
    summary = summary.merge(
        turnover[["lot_id", "spots", "arrivals", "turnover_per_spot_day", "mean_dwell_min"]],
        on="lot_id",
        how="left",
    )
    columns = ["lot_id", "name", "capacity", "occupancy_now", "mean_occupancy",
               "peak_occupancy", "share_above", "spots", "arrivals",
               "turnover_per_spot_day", "mean_dwell_min"]  # fmt: skip
    return summary[columns].sort_values("lot_id").reset_index(drop=True)


def pressure_bucket(start: datetime, end: datetime) -> str:
    """Name the bucket size `time_above` counts in for a range (as the store chooses it)."""
    return "5-minute" if end - start <= timedelta(days=2) else "hourly"
