"""Pure shaping for the Parking page's status table: opening status and free spaces per category."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import pandas as pd
import streamlit as st

from streetsense.lot_checks import checked_occupied
from streetsense.lot_status import Override, lot_status

STATUS_COLUMNS: Final = {
    "decided_by": st.column_config.TextColumn("decided by"),
    "free": st.column_config.NumberColumn("free now", format="%d"),
    "spaces": st.column_config.TextColumn("spaces per category"),
    "checks": st.column_config.TextColumn("meaning checks failed"),
}


@dataclass(frozen=True, slots=True)
class _Counts:
    occupied: float
    counter: float | None
    sensed: float | None
    sensors: int


def check_reasons(capacity: int, live: pd.DataFrame, lot_id: str) -> str:
    """Return the reasons of the meaning checks a lot's live counts fail ('' when none), the
    same checks the open feeds publish."""
    rows = live[live["lot_id"] == lot_id]
    if rows.empty:
        return ""
    row = rows.iloc[0]
    counter = None if pd.isna(row["counter"]) else float(row["counter"])
    sensed = None if pd.isna(row["sensed"]) else float(row["sensed"])
    occupied = counter if counter is not None else (sensed or 0.0)
    _, checks = checked_occupied(capacity, _Counts(occupied, counter, sensed, int(row["sensors"])))
    return "; ".join(check.reason for check in checks)


def status_table(
    details: pd.DataFrame,
    categories: pd.DataFrame,
    lots_now: pd.DataFrame,
    live: pd.DataFrame,
    overrides: Mapping[str, Override],
    now: datetime,
    timezone: str,
    country: str,
) -> pd.DataFrame:
    """Return one row per lot: status, what decided it, free spaces, and per category free.

    A closed lot shows no free count: it is closed, not full.
    """
    occupied = dict(zip(lots_now["lot_id"], lots_now["occupied"], strict=True))
    rows: list[dict[str, Any]] = []
    for lot in details.itertuples(index=False):
        found = lot_status(lot.opening_hours, overrides.get(lot.lot_id), now, timezone, country)
        closed = found.status.value == "closed"
        taken = occupied.get(lot.lot_id)
        free = (
            None
            if closed or taken is None or pd.isna(taken)
            else max(0, lot.capacity - round(taken))
        )
        rows.append(
            {
                "lot_id": lot.lot_id,
                "name": lot.name,
                "status": found.status.value,
                "decided_by": found.source.value,
                "reason": found.reason,
                "free": free,
                "spaces": free_by_category(lot.lot_id, lot.spaces, categories, closed),
                "checks": check_reasons(lot.capacity, live, lot.lot_id),
            }
        )
    return pd.DataFrame(rows, columns=["lot_id", "name", "status", "decided_by", "reason",
                                       "free", "spaces", "checks"])  # fmt: skip


def free_by_category(
    lot_id: str, spaces: dict[str, int], categories: pd.DataFrame, closed: bool
) -> str:
    """Say what is free per category in words, e.g. "2 disabled spaces free, 1 of 1 sensed".

    Categories no sensor watches say so instead of guessing.
    """
    if not spaces:
        return ""
    sensed = categories[categories["lot_id"] == lot_id].set_index("category")
    parts = []
    for category, capacity in spaces.items():
        label = category.replace("_", " ")
        if closed:
            parts.append(f"{label}: closed")
        elif category in sensed.index and sensed.loc[category, "reporting"] >= capacity:
            free = max(0, capacity - int(sensed.loc[category, "occupied"]))
            noun = "space" if free == 1 else "spaces"
            parts.append(f"{free} {label} {noun} free")
        else:
            parts.append(f"{capacity} {label} (not sensed)")
    return ", ".join(parts)


def parking_kpis(lots_now: pd.DataFrame, closed: frozenset[str], full_at: float) -> tuple[int, int]:
    """Return (spaces free, lots at or above `full_at`) over the open lots: a closed lot's
    spaces are not free, and a closed lot is not full."""
    open_now = lots_now[~lots_now["lot_id"].isin(closed) & lots_now["occupied"].notna()]
    free = (open_now["capacity"] - open_now["occupied"]).clip(lower=0).sum()
    return round(float(free)), int((open_now["occupancy"] >= full_at).sum())


def without_closed(lots_now: pd.DataFrame, closed: frozenset[str]) -> pd.DataFrame:
    """Return lots_now with no occupancy for closed lots (drawn grey: closed, not full)."""
    return lots_now.assign(occupancy=lots_now["occupancy"].where(~lots_now["lot_id"].isin(closed)))
