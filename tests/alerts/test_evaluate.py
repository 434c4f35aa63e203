"""Each field and traffic rule on the real database: what fires, what does not, and the
traffic incident rule with a speed band, without one yet, and on a collapsed flow."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import numpy as np
import psycopg

from alerts.engine import Report
from alerts.rules import RuleSet, parse_rules
from store import rollups
from store.forecasts import Run, write_run
from streetsense.config import Settings
from streetsense.readings import Reading
from tests.alerts.support import T0, at, health, write

Evaluate = Callable[[RuleSet, datetime], Report]


def firing(conn: psycopg.Connection) -> list[tuple[str, str]]:
    rows = conn.execute(
        "SELECT rule, subject_id FROM alerts WHERE state = 'firing' ORDER BY 1, 2"
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def test_device_health_rules(city: psycopg.Connection, evaluate: Evaluate) -> None:
    rules = parse_rules("""
[[rule]]
name = "battery"
kind = "battery_low"
below_v = 3.3
[[rule]]
name = "buffer"
kind = "buffer_growing"
above = 1000
[[rule]]
name = "dropping"
kind = "buffer_dropping"
[[rule]]
name = "clock"
kind = "clock_suspect"
""")
    health(city, ["counter"], at(0), battery=3.1, buffer_depth=5000, buffer_dropped=0)
    health(city, ["gw"], at(0), battery=3.9, buffer_depth=10, buffer_dropped=12)
    write(city, [Reading("loop", "battery", at(-1), 3.9, clock_suspect=True)], at(0))
    city.commit()
    evaluate(rules, at(1))
    assert firing(city) == [
        ("battery", "counter"),
        ("buffer", "counter"),
        ("clock", "loop"),
        ("dropping", "gw"),
    ]
    health(city, ["counter"], at(2), battery=3.35)  # above below_v, under the clearing edge
    evaluate(rules, at(3))
    assert ("battery", "counter") in firing(city)
    health(city, ["counter"], at(4), battery=3.5)
    evaluate(rules, at(5))
    assert ("battery", "counter") not in firing(city)


def test_stuck_spot_sensor_while_its_lot_changes(
    city: psycopg.Connection, evaluate: Evaluate
) -> None:
    rules = parse_rules('[[rule]]\nname = "stuck"\nkind = "stuck_sensor"\nhours = 6\n')
    readings = []
    for minute in range(0, 360, 30):
        readings.append(Reading("gw", "occupied", at(minute), 1.0, "s1"))  # stuck
        for sensor in ("s2", "s3", "s4"):
            readings.append(Reading("gw", "occupied", at(minute), float(minute % 60 == 0), sensor))
    write(city, readings, at(360))
    city.commit()
    evaluate(rules, at(361))
    assert firing(city) == [("stuck", "gw")]
    summary = city.execute("SELECT summary, details FROM alerts").fetchone()
    assert summary is not None and summary[1]["sensors"] == ["s1"]


def _traffic(conn: psycopg.Connection, settings: Settings, speeds: list[float],
             counts: list[int], occupancy: list[float]) -> None:  # fmt: skip
    readings = []
    for k, (speed, count, occ) in enumerate(zip(speeds, counts, occupancy, strict=True)):
        moment = at(5 * k)
        readings += [Reading("loop", "vehicle_count", moment, float(count), "l1"),
                     Reading("loop", "mean_speed", moment, speed, "l1"),
                     Reading("loop", "detector_occupancy", moment, occ, "l1")]  # fmt: skip
    write(conn, readings, at(5 * len(speeds)))
    conn.commit()
    conn.autocommit = True
    rollups.refresh(conn, settings, until=at(5 * len(speeds)), since=T0 - timedelta(hours=1))
    conn.autocommit = False


INCIDENT = parse_rules('[[rule]]\nname = "incident"\nkind = "traffic_incident"\n')


def test_incident_on_5_minute_data_needs_two_slow_intervals_below_the_band(
    city: psycopg.Connection, settings: Settings, evaluate: Evaluate
) -> None:
    # six normal intervals, then 20 km/h where the band's lower edge is 40, with 480 veh/h
    # getting through on the 1800 veh/h ring (an incident cuts what passes)
    _traffic(city, settings, [48] * 6 + [20, 20], [100] * 6 + [40, 40], [10.0] * 8)
    evaluate(INCIDENT, at(40))
    assert firing(city) == []  # no forecast yet: the speed half waits, nothing breaks
    mean = np.full((1, 36), 47.0)
    with city.transaction():
        write_run(city, Run("speed", 300, at(0), at(-28 * 24 * 60), at(0), 36, "test"),
                  ["ring"], mean, mean - 7, mean + 7, ["test"])  # fmt: skip
    city.commit()
    evaluate(INCIDENT, at(39.5))  # only the first slow interval is complete
    assert firing(city) == []
    evaluate(INCIDENT, at(40))
    assert firing(city) == [("incident", "ring")]
    [(summary, details)] = city.execute("SELECT summary, details FROM alerts").fetchall()
    assert summary == "ring: speed 20 km/h, 20 km/h below its 80% band for 10 min (since 08:30 UTC)"
    assert details["below_band_kmh"] == 20.0 and details["collapse"] is False
    assert details["slow_min"] == 10.0 and details["since"] == at(30).isoformat()


def _speed_run(conn: psycopg.Connection) -> None:
    mean = np.full((1, 36), 47.0)
    with conn.transaction():
        write_run(conn, Run("speed", 300, at(0), at(-28 * 24 * 60), at(0), 36, "test"),
                  ["ring"], mean, mean - 7, mean + 7, ["test"])  # fmt: skip
    conn.commit()


def test_incident_on_1_minute_readings_fires_within_minutes_as_they_arrive(
    city: psycopg.Connection, evaluate: Evaluate
) -> None:
    _speed_run(city)
    # two lanes counting every minute, as the edge agents do (720 veh/h on the 1800 veh/h
    # ring): 48 km/h, then from minute 30 a queue at 15 km/h on the busy lane while a few cars
    # still pass at 45 on the other
    readings = []
    for minute in range(10, 45):
        slow = minute >= 30
        for lane, count, speed in (("l1", 10.0, 15.0 if slow else 48.0),
                                   ("l2", 2.0, 45.0 if slow else 48.0)):  # fmt: skip
            readings += [Reading("loop", "vehicle_count", at(minute), count, lane),
                         Reading("loop", "mean_speed", at(minute), speed, lane),
                         Reading("loop", "detector_occupancy", at(minute), 10.0, lane)]  # fmt: skip
    write(city, readings, at(45))
    city.commit()
    # windows of 5 minutes weighed by vehicles: (3 x 12 x 48 + 2 x (10 x 15 + 2 x 45)) / 60
    # = 36.8 km/h, under 37, from the window ending with minute 31 (in at 32)
    evaluate(INCIDENT, at(32))
    assert firing(city) == []  # slow for 5 minutes of data: one window
    evaluate(INCIDENT, at(33))
    assert firing(city) == [("incident", "ring")]  # two windows: 6 minutes, 3 after it began
    [(summary, details)] = city.execute("SELECT summary, details FROM alerts").fetchall()
    assert details["slow_min"] == 6.0 and details["since"] == at(27).isoformat()
    # the newest window, minutes 28-32: (2 x 12 x 48 + 3 x 240) / 60 = 31.2 km/h
    assert summary == "ring: speed 31 km/h, 9 km/h below its 80% band for 6 min (since 08:27 UTC)"


def test_a_reading_whose_interval_has_not_ended_is_not_judged(
    city: psycopg.Connection, evaluate: Evaluate
) -> None:
    _speed_run(city)
    readings = [
        Reading("loop", kind, at(minute), value, "l1")
        for minute in range(0, 40, 5)
        for kind, value in (("vehicle_count", 100.0 if minute < 30 else 40.0),
                            ("mean_speed", 48.0 if minute < 30 else 20.0))
    ]  # fmt: skip
    write(city, readings, at(40))
    city.commit()
    evaluate(INCIDENT, at(39))  # the interval of minute 35 ends at 40: one slow interval
    assert firing(city) == []
    evaluate(INCIDENT, at(40))
    assert firing(city) == [("incident", "ring")]


def test_flow_collapse_with_occupied_detectors_needs_no_forecast(
    city: psycopg.Connection, settings: Settings, evaluate: Evaluate
) -> None:
    # ring carries 1800 veh/h; 20 vehicles in 5 min is 240 veh/h with detectors 60% occupied
    _traffic(city, settings, [48] * 6 + [8, 8], [100] * 6 + [20, 20], [10.0] * 6 + [60, 60])
    evaluate(INCIDENT, at(40))
    assert firing(city) == [("incident", "ring")]
    [(summary,)] = city.execute("SELECT summary FROM alerts").fetchall()
    assert "flow collapsed" in summary


def test_a_slowdown_seen_in_two_past_weeks_is_recurrent_not_an_incident(
    city: psycopg.Connection, settings: Settings, evaluate: Evaluate
) -> None:
    mean = np.full((1, 36), 47.0)
    with city.transaction():
        write_run(city, Run("speed", 300, at(0), at(-28 * 24 * 60), at(0), 36, "test"),
                  ["ring"], mean, mean - 7, mean + 7, ["test"])  # fmt: skip
    city.commit()

    def past_weeks(weeks: list[int]) -> None:
        readings = [
            Reading("loop", kind, at(5 * k) - timedelta(weeks=week), value, "l1")
            for week in weeks for k in (6, 7)
            for kind, value in (("vehicle_count", 100.0), ("mean_speed", 21.0))
        ]  # fmt: skip
        write(city, readings, at(0))
        city.commit()

    past_weeks([1])  # one earlier week as slow: could have been an incident too
    _traffic(city, settings, [48] * 6 + [20, 20], [100] * 6 + [40, 40], [10.0] * 8)
    city.autocommit = True
    rollups.refresh(city, settings, until=at(40), since=T0 - timedelta(weeks=3))
    city.autocommit = False
    evaluate(INCIDENT, at(40))
    assert firing(city) == [("incident", "ring")]
    city.execute("DELETE FROM alerts")
    city.commit()
    past_weeks([2])  # now twice in four weeks: this road is slow at this time
    city.autocommit = True
    rollups.refresh(city, settings, until=at(40), since=T0 - timedelta(weeks=3))
    city.autocommit = False
    evaluate(INCIDENT, at(40))
    assert firing(city) == []


def test_a_rush_hour_queue_flowing_near_capacity_raises_no_incident(
    city: psycopg.Connection, settings: Settings, evaluate: Evaluate
) -> None:
    _speed_run(city)
    # 20 km/h where the band's lower edge is 40, for two intervals, while 140 vehicles in 5
    # minutes (1680 veh/h) still pass the 1800 veh/h ring: its own bottleneck, not a crash
    _traffic(city, settings, [48] * 6 + [20, 20], [100] * 6 + [140, 140], [10.0] * 8)
    evaluate(INCIDENT, at(40))
    assert firing(city) == []
    loose = parse_rules(
        '[[rule]]\nname = "incident"\nkind = "traffic_incident"\nqueue_flow_share = 1.0\n'
    )
    evaluate(loose, at(40))
    assert firing(city) == [("incident", "ring")]
