"""The Parking page's status table: words per category, closed is not full, meaning checks."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from dashboard.lot_status import check_reasons, free_by_category, parking_kpis, status_table
from streetsense.hours import OpeningStatus
from streetsense.lot_status import StatusOverride

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
LIVE = pd.DataFrame(
    [("gated", 10.0, 30.0, 30), ("kerb", None, 2.0, 3)],
    columns=["lot_id", "counter", "sensed", "sensors"],
)
CATEGORIES = pd.DataFrame(
    [("kerb", "disabled", 2, 1, 2), ("kerb", "general", 1, 1, 1)],
    columns=["lot_id", "category", "sensed", "occupied", "reporting"],
)


def test_the_checks_the_feeds_publish_show_on_the_page() -> None:
    reasons = check_reasons(100, LIVE, "gated")
    assert "the gate counter says 10 spaces taken, spot sensors on 30 of 100 spaces say 30" in (
        reasons
    )
    assert check_reasons(3, LIVE, "kerb") == ""
    assert check_reasons(3, LIVE, "unknown") == ""


def test_free_per_category_in_words() -> None:
    assert free_by_category("kerb", {"disabled": 2}, CATEGORIES, False) == ("1 disabled space free")
    assert free_by_category("kerb", {"ev_charging": 1}, CATEGORIES, False) == (
        "1 ev charging (not sensed)"
    )
    assert free_by_category("kerb", {"disabled": 2}, CATEGORIES, True) == "disabled: closed"


def test_a_closed_lot_is_neither_free_nor_full() -> None:
    details = pd.DataFrame(
        [("kerb", "Kerb", 3, "", {"disabled": 2}), ("gated", "Gated", 100, "", {})],
        columns=["lot_id", "name", "capacity", "opening_hours", "spaces"],
    )
    lots_now = pd.DataFrame(
        [("kerb", 3, 3.0, 1.0), ("gated", 100, 95.0, 0.95)],
        columns=["lot_id", "capacity", "occupied", "occupancy"],
    )
    closure = StatusOverride("gated", OpeningStatus.CLOSED, "works", "ops", NOW)
    table = status_table(
        details, CATEGORIES, lots_now, LIVE, {"gated": closure}, NOW, "UTC", ""
    ).set_index("lot_id")
    assert table.loc["gated", "status"] == "closed" and table.loc["gated", "reason"] == "works"
    assert pd.isna(table.loc["gated", "free"])
    assert table.loc["kerb", "free"] == 0 and table.loc["kerb", "status"] == "open"
    assert parking_kpis(lots_now, frozenset({"gated"}), 0.9) == (0, 1)
    assert parking_kpis(lots_now, frozenset(), 0.9) == (5, 2)
