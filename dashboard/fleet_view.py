"""Pure shaping for the Sensors and devices page: which devices are in trouble, and why.

A field engineer reads this page to decide where to go first: devices that stopped talking,
then those losing data, then those about to. Each trouble is said in words with its figure.
"""

from __future__ import annotations

from typing import Any, Final

import pandas as pd

# A buffer whose oldest reading has waited this long is growing: the link or ingest is away.
BUFFER_WAIT_S: Final = 300.0
# Rank of each trouble: lower comes first.
_RANKS: Final = {"never seen": 0, "offline": 1, "dropped": 2, "late": 3, "buffer": 4,
                 "battery": 5, "clock": 6}  # fmt: skip


def _troubles(row: Any, low_battery_v: float) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    if not row.seen:
        found.append((_RANKS["never seen"], "never seen"))
    elif not row.online:
        found.append((_RANKS["offline"], "offline"))
    if row.buffer_dropped and row.buffer_dropped > 0:
        found.append((_RANKS["dropped"], f"dropped {row.buffer_dropped:,.0f} readings at its cap"))
    if row.late_dropped and row.late_dropped > 0:
        found.append((_RANKS["late"], f"{row.late_dropped:,.0f} vehicle detections too late"))
    if row.buffer_oldest_age_s and row.buffer_oldest_age_s > BUFFER_WAIT_S:
        waiting = (
            f"{row.buffer_depth:,.0f} readings, oldest {row.buffer_oldest_age_s / 60:,.0f} min"
        )
        found.append((_RANKS["buffer"], f"buffer growing: {waiting}"))
    if row.battery_v is not None and not pd.isna(row.battery_v) and row.battery_v < low_battery_v:
        found.append((_RANKS["battery"], f"battery low ({row.battery_v:.2f} V)"))
    if row.clock_suspect:
        found.append((_RANKS["clock"], "clock suspect (readings flagged in the last hour)"))
    return found


def with_troubles(devices: pd.DataFrame, low_battery_v: float) -> pd.DataFrame:
    """Return the devices with a `trouble` column, the ones in trouble first, worst first."""
    ranks, words = [], []
    for row in devices.itertuples(index=False):
        found = sorted(_troubles(row, low_battery_v))
        ranks.append(found[0][0] if found else len(_RANKS))
        words.append("; ".join(text for _, text in found))
    shown = devices.assign(trouble=words, rank=ranks)
    ordered = shown.sort_values(["rank", "last_seen_at", "device_id"], na_position="first")
    return ordered.drop(columns="rank").reset_index(drop=True)


def rows_height(rows: int) -> int:
    """Return the pixel height that shows every row of a table (no scrolling inside it)."""
    return 38 + 35 * max(rows, 1)


FLEET_STATES: Final = ("online", "offline", "never seen", "revoked", "expired")


def filter_fleet(devices: pd.DataFrame, sites: list[str], states: list[str]) -> pd.DataFrame:
    """Return the enrolled devices of these sites and states (all when a list is empty)."""
    shown = devices
    if sites:
        shown = shown[shown["site_id"].isin(sites)]
    if states:
        shown = shown[shown["state"].isin(states)]
    return shown.reset_index(drop=True)


def expiring(devices: pd.DataFrame, now: pd.Timestamp, days: float) -> pd.DataFrame:
    """Return devices whose password expires within `days` (and is still accepted)."""
    live = devices[~devices["state"].isin(["revoked", "expired"])]
    soon = pd.to_datetime(live["expires_at"], utc=True) <= now + pd.Timedelta(days=days)
    return live[soon]


def rollout_label(row: Any) -> str:
    """Return a device's latest rollout in words: '0.2.0: rolled_back (reason)', or ''."""
    if row.rollout_id is None or pd.isna(row.rollout_id):
        return ""
    reason = f" ({row.rollout_reason})" if row.rollout_reason else ""
    return f"{row.rollout_version}: {row.rollout_state}{reason}"
