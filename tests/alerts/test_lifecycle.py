"""The lifecycle on the real database: pending, firing, deduplicated, damped, acknowledged,
resolved, and history kept; maintenance windows, quiet hours and storm grouping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import psycopg

from alerts.engine import Report
from alerts.rules import RuleSet
from store import alerts as store
from store import alerts_reads
from streetsense.config import Settings
from tests.alerts.conftest import rules
from tests.alerts.support import at, garage_count, health, load_city

Evaluate = Callable[[RuleSet, datetime], Report]

CHANNEL = """
[channel.ops]
type = "webhook"
url = "http://127.0.0.1:9/hook"
secret_env = "TEST_ALERTS_SECRET"
"""
LOT_FULL = rules(
    """
[[rule]]
name = "garage-full"
kind = "lot_occupancy"
above = 0.95
clear_below = 0.9
for_min = 10
clear_for_min = 5
notify = ["ops"]
"""
    + CHANNEL
)


def states(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    return conn.execute("SELECT rule, subject_id, state FROM alerts ORDER BY alert_id").fetchall()


def transitions(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute("SELECT transition FROM alert_events ORDER BY event_id").fetchall()
    return [r[0] for r in rows]


def outbox(conn: psycopg.Connection) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT payload FROM alert_outbox ORDER BY outbox_id").fetchall()
    return [r[0] for r in rows]


def test_fires_after_its_duration_once_and_resolves_after_clearing(
    city: psycopg.Connection, settings: Settings, evaluate: Evaluate
) -> None:
    garage_count(city, settings, 0, 96)
    evaluate(LOT_FULL, at(0))
    assert states(city) == [("garage-full", "garage", "pending")]
    assert alerts_reads.active(city, 10).rows == []  # pending is never shown
    evaluate(LOT_FULL, at(5))
    assert states(city)[0][2] == "pending"
    evaluate(LOT_FULL, at(10))
    assert states(city) == [("garage-full", "garage", "firing")]
    for minute in (11, 12):  # repeats change nothing
        evaluate(LOT_FULL, at(minute))
    garage_count(city, settings, 13, 92)  # below the raising edge, above the clearing one
    evaluate(LOT_FULL, at(13))
    garage_count(city, settings, 14, 80)
    evaluate(LOT_FULL, at(14))
    garage_count(city, settings, 16, 97)  # back before clear_for_min: the clearing restarts
    evaluate(LOT_FULL, at(16))
    garage_count(city, settings, 17, 80)
    evaluate(LOT_FULL, at(17))
    evaluate(LOT_FULL, at(21))
    assert states(city)[0][2] == "firing"
    evaluate(LOT_FULL, at(22))
    assert states(city) == [("garage-full", "garage", "resolved")]
    assert transitions(city) == ["firing", "resolved"]
    assert [p["transition"] for p in outbox(city)] == ["firing", "resolved"]
    first = outbox(city)[0]
    assert first["count"] == 1 and first["subjects"][0]["subject_id"] == "garage"
    assert "96%" in first["title"]
    history = alerts_reads.history(city, 10)
    assert history.column("state") == ["resolved"]
    # a new episode after resolution is a new alert, with its own history
    garage_count(city, settings, 30, 99)
    evaluate(LOT_FULL, at(30))
    evaluate(LOT_FULL, at(40))
    assert [s[2] for s in states(city)] == ["resolved", "firing"]


def test_flapping_condition_never_fires(
    city: psycopg.Connection, settings: Settings, evaluate: Evaluate
) -> None:
    for minute in range(0, 40, 2):
        garage_count(city, settings, minute, 96 if minute % 4 == 0 else 50)
        evaluate(LOT_FULL, at(minute))
    assert transitions(city) == []
    assert outbox(city) == []


def test_acknowledge_records_who_when_and_note_once(
    city: psycopg.Connection, settings: Settings, evaluate: Evaluate
) -> None:
    garage_count(city, settings, 0, 99)
    evaluate(LOT_FULL, at(0))
    evaluate(LOT_FULL, at(10))
    alert_id = states_ids(city)[0]
    assert store.acknowledge(city, alert_id, "ana", "barrier opened", at(12))
    assert not store.acknowledge(city, alert_id, "bo", "me too", at(13))
    city.commit()
    evaluate(LOT_FULL, at(14))
    row = alerts_reads.active(city, 10)
    assert row.column("state") == ["acknowledged"]
    assert row.column("acked_by") == ["ana"] and row.column("ack_note") == ["barrier opened"]
    acked = outbox(city)[1]
    assert acked["transition"] == "acknowledged"
    assert acked["subjects"][0]["by"] == "ana" and acked["subjects"][0]["note"] == "barrier opened"
    garage_count(city, settings, 20, 10)
    evaluate(LOT_FULL, at(20))
    evaluate(LOT_FULL, at(26))
    assert transitions(city) == ["firing", "acknowledged", "resolved"]
    assert alerts_reads.events(city, alert_id).column("actor") == ["", "ana", ""]


def states_ids(conn: psycopg.Connection) -> list[int]:
    return [r[0] for r in conn.execute("SELECT alert_id FROM alerts ORDER BY alert_id")]


OFFLINE = rules(
    """
[[rule]]
name = "offline"
kind = "device_offline"
after_min = 15
notify = ["ops"]
"""
    + CHANNEL
)


def test_a_district_offline_at_once_is_one_notification_per_rule_and_area(
    db: psycopg.Connection, evaluate: Evaluate
) -> None:
    load_city(db, north_devices=500)
    north = [f"n{i:04d}" for i in range(500)]
    health(db, [*north, "counter", "gw", "loop"], at(0))
    evaluate(OFFLINE, at(10))
    assert outbox(db) == []
    health(db, ["counter", "gw"], at(30))  # the rest lost power at once
    evaluate(OFFLINE, at(31))
    sent = outbox(db)
    assert len(states(db)) == 501  # every device has its alert, for the field engineers
    by_area = {p["area"]: p for p in sent}
    assert sorted(by_area) == ["north", "old-town"]
    assert by_area["north"]["count"] == 500 and by_area["north"]["more"] == 450
    assert len(by_area["north"]["subjects"]) == 50
    assert by_area["old-town"]["count"] == 1
    health(db, north, at(40))  # power back
    evaluate(OFFLINE, at(41))
    resolved = [p for p in outbox(db) if p["transition"] == "resolved"]
    assert [(p["area"], p["count"]) for p in resolved] == [("north", 500)]


def test_last_will_means_offline_at_once(db: psycopg.Connection, evaluate: Evaluate) -> None:
    load_city(db)
    health(db, ["counter"], at(0), online=False)
    evaluate(OFFLINE, at(1))
    assert states(db) == [("offline", "counter", "firing")]
    assert "Last Will" in outbox(db)[0]["title"]


def test_maintenance_window_holds_back_new_alerts_in_its_scope(
    db: psycopg.Connection, evaluate: Evaluate
) -> None:
    load_city(db, north_devices=3)
    window = """
[[maintenance]]
name = "north works"
start = 2026-11-20T08:00:00Z
end = 2026-11-20T10:00:00Z
areas = ["north"]
"""
    with_window = rules(OFFLINE_TEXT + window)
    health(db, ["n0000", "n0001", "n0002", "counter"], at(0))
    evaluate(with_window, at(30))
    assert {s[1] for s in states(db)} == {"counter"}
    evaluate(with_window, at(121))  # the window closed
    assert {s[1] for s in states(db)} == {"counter", "n0000", "n0001", "n0002"}


OFFLINE_TEXT = """
[[rule]]
name = "offline"
kind = "device_offline"
after_min = 15
"""


def test_quiet_hours_hold_notifications_until_they_end(
    db: psycopg.Connection, evaluate: Evaluate
) -> None:
    load_city(db)
    quiet = rules(
        """
[[rule]]
name = "offline"
kind = "device_offline"
after_min = 15
quiet_hours = "08:00-09:00"
notify = ["ops"]
"""
        + CHANNEL
    )
    health(db, ["counter"], at(0))
    evaluate(quiet, at(30))  # 08:30 UTC, quiet
    assert states(db) == [("offline", "counter", "firing")]  # recorded and shown
    assert outbox(db) == []
    evaluate(quiet, at(61))  # 09:01
    assert [p["transition"] for p in outbox(db)] == ["firing"]


def test_a_closed_lot_is_never_full(
    city: psycopg.Connection, settings: Settings, evaluate: Evaluate
) -> None:
    from store.lot_status import set_override
    from streetsense.hours import OpeningStatus
    from streetsense.lot_status import StatusOverride

    garage_count(city, settings, 0, 99)
    evaluate(LOT_FULL, at(0))
    evaluate(LOT_FULL, at(10))
    assert states(city)[0][2] == "firing"
    set_override(city, StatusOverride("garage", OpeningStatus.CLOSED, "event", "ana", at(11)),
                 "cli")  # fmt: skip
    city.commit()
    for minute in (12, 18):
        evaluate(LOT_FULL, at(minute))
    assert states(city) == [("garage-full", "garage", "resolved")]
    evaluate(LOT_FULL, at(40))
    assert len(states(city)) == 1


def test_a_rule_with_every_min_is_evaluated_only_when_due(
    db: psycopg.Connection, database_url: str
) -> None:
    from alerts.engine import run_once

    load_city(db)
    slow = rules('[[rule]]\nname = "offline"\nkind = "device_offline"\nevery_min = 15\n')
    last_run: dict[str, datetime] = {}
    with psycopg.connect(database_url, autocommit=True) as conn:
        health(db, ["counter"], at(0))
        run_once(conn, slow, at(1), "UTC", last_run)
        health(db, ["gw"], at(0))
        skipped = run_once(conn, slow, at(30), "UTC", last_run)
        assert "offline" in skipped.outcomes  # 29 min later: due
        health(db, ["loop"], at(0))
        skipped = run_once(conn, slow, at(40), "UTC", last_run)
        assert skipped.outcomes == {}  # 10 min after: not due, nothing read or changed
        assert {s[1] for s in states(db)} == {"counter", "gw"}
        run_once(conn, slow, at(45), "UTC", last_run)
    assert {s[1] for s in states(db)} == {"counter", "gw", "loop"}
