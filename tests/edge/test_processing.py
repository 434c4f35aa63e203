"""Spot debounce, traffic intervals, pass-through and clock flags, on event time."""

from __future__ import annotations

import time

import pytest

from edge.clock import ClockGuard
from edge.config import ParkingSection, TrafficSection
from edge.drivers import PRESENCE, VEHICLE, SensorEvent
from edge.processing import Processor
from streetsense.readings import Reading, datetime_to_epoch

T0 = 1_800_000_000.0  # a multiple of 60 and 300: interval boundaries are easy to read


def _processor(**parking: float) -> Processor:
    settings = ParkingSection(
        **{"occupied_after_s": 30, "free_after_s": 60, "heartbeat_s": 900} | parking
    )
    clock = ClockGuard(valid_after=1_700_000_000, max_jump_s=120, settle_s=300)
    traffic = TrafficSection(interval_s=60, grace_s=2, revise_within_s=600)
    # The agent started listening at T0, on an interval boundary: its first interval is whole.
    return Processor("gw-1", settings, traffic, clock, started_at=T0)


def _revised(readings: list[Reading]) -> list[tuple[str | None, str, float, float, int]]:
    return [(*row, r.revision) for row, r in zip(_summary(readings), readings, strict=True)]


def _summary(readings: list[Reading]) -> list[tuple[str | None, str, float, float]]:
    return [(r.sub_id, r.kind, datetime_to_epoch(r.observed_at) - T0, r.value) for r in readings]


def test_a_car_counts_as_arrived_only_after_staying_and_is_stamped_when_it_came() -> None:
    processor = _processor()
    processor.accept([SensorEvent(T0, PRESENCE, 1, "A1")])
    assert processor.tick(T0 + 29) == []
    assert _summary(processor.tick(T0 + 30)) == [("A1", "occupied", 0.0, 1.0)]
    assert processor.tick(T0 + 31) == []


def test_flapping_presence_shorter_than_the_thresholds_changes_nothing() -> None:
    processor = _processor()
    processor.accept([SensorEvent(T0, PRESENCE, 1, "A1")])
    processor.tick(T0 + 30)
    for offset in range(31, 200, 10):  # absent 5 s, present 5 s, ...
        processor.accept([SensorEvent(T0 + offset, PRESENCE, 0, "A1")])
        processor.accept([SensorEvent(T0 + offset + 5, PRESENCE, 1, "A1")])
        assert processor.tick(T0 + offset + 9) == []


def test_a_spot_becomes_free_after_the_absence_threshold() -> None:
    processor = _processor()
    processor.accept([SensorEvent(T0, PRESENCE, 1, "A1")])
    processor.tick(T0 + 30)
    processor.accept([SensorEvent(T0 + 100, PRESENCE, 0, "A1")])
    assert processor.tick(T0 + 159) == []
    assert _summary(processor.tick(T0 + 160)) == [("A1", "occupied", 100.0, 0.0)]


def test_the_heartbeat_repeats_the_current_state_but_not_during_a_pending_change() -> None:
    processor = _processor(heartbeat_s=100)
    processor.accept([SensorEvent(T0, PRESENCE, 1, "A1")])
    processor.tick(T0 + 30)
    assert _summary(processor.tick(T0 + 100)) == [("A1", "occupied", 100.0, 1.0)]
    processor.accept([SensorEvent(T0 + 150, PRESENCE, 0, "A1")])
    assert processor.tick(T0 + 205) == []  # leaving is pending: no stale heartbeat
    assert _summary(processor.tick(T0 + 210)) == [("A1", "occupied", 150.0, 0.0)]


def test_remote_thresholds_apply_to_the_next_decision() -> None:
    processor = _processor()
    processor.reconfigure(ParkingSection(occupied_after_s=5), TrafficSection(interval_s=60))
    processor.accept([SensorEvent(T0, PRESENCE, 1, "A1")])
    assert _summary(processor.tick(T0 + 5)) == [("A1", "occupied", 0.0, 1.0)]


def test_vehicles_are_counted_per_lane_in_clock_aligned_intervals() -> None:
    processor = _processor()
    processor.accept(
        [
            SensorEvent(T0 + 10, VEHICLE, 40.0, "L1", 0.6),
            SensorEvent(T0 + 20, VEHICLE, 60.0, "L1", 0.6),
            SensorEvent(T0 + 30, VEHICLE, 50.0, "L2", 1.2),
            SensorEvent(T0 + 70, VEHICLE, 30.0, "L1", 0.3),
        ]
    )
    assert processor.tick(T0 + 61) == []  # within the grace period
    assert _summary(processor.tick(T0 + 62)) == [
        ("L1", "vehicle_count", 0.0, 2.0),
        ("L1", "mean_speed", 0.0, 50.0),
        ("L1", "detector_occupancy", 0.0, 2.0),
        ("L2", "vehicle_count", 0.0, 1.0),
        ("L2", "mean_speed", 0.0, 50.0),
        ("L2", "detector_occupancy", 0.0, 2.0),
    ]
    # An interval without traffic still reports zero for every known lane.
    readings = _summary(processor.tick(T0 + 182))
    assert ("L1", "vehicle_count", 60.0, 1.0) in readings
    assert ("L2", "vehicle_count", 60.0, 0.0) in readings
    assert ("L2", "vehicle_count", 120.0, 0.0) in readings
    assert not [r for r in readings if r[1] == "mean_speed" and r[0] == "L2"]


def test_a_new_interval_length_starts_on_its_own_boundary() -> None:
    processor = _processor()
    processor.accept([SensorEvent(T0 + 10, VEHICLE, 40.0, "L1")])
    processor.tick(T0 + 30)
    processor.reconfigure(ParkingSection(), TrafficSection(interval_s=300, grace_s=2))
    starts = {r[2] for r in _summary(processor.tick(T0 + 1000))}
    assert starts == {0.0, 60.0, 300.0, 600.0}  # 60-300 is the short bridge to the new grid


def test_a_detection_after_its_interval_was_sent_sends_the_interval_again_revised() -> None:
    processor = _processor()
    processor.accept([SensorEvent(T0 + 10, VEHICLE, 40.0, "L1", 0.6)])
    processor.accept([SensorEvent(T0 + 20, VEHICLE, 40.0, "L2", 0.6)])
    first = _revised(processor.tick(T0 + 62))
    assert ("L1", "vehicle_count", 0.0, 1.0, 0) in first
    # The sensor lagged (a starved sensor process): two more L1 vehicles of 0-60 s come now.
    processor.accept(
        [
            SensorEvent(T0 + 30, VEHICLE, 60.0, "L1", 0.6),
            SensorEvent(T0 + 50, VEHICLE, 80.0, "L1", 0.6),
            SensorEvent(T0 + 65, VEHICLE, 50.0, "L2", 0.3),  # in the open interval: not late
        ]
    )
    assert _revised(processor.tick(T0 + 63)) == [
        ("L1", "vehicle_count", 0.0, 3.0, 1),
        ("L1", "mean_speed", 0.0, 60.0, 1),
        ("L1", "detector_occupancy", 0.0, 3.0, 1),
    ]
    assert processor.traffic.late == 2
    processor.accept([SensorEvent(T0 + 55, VEHICLE, 40.0, "L2", 0.6)])
    assert _revised(processor.tick(T0 + 64))[0] == ("L2", "vehicle_count", 0.0, 2.0, 2)
    assert ("L2", "vehicle_count", 60.0, 1.0, 0) in _revised(processor.tick(T0 + 122))
    assert processor.traffic.dropped == 0


def test_a_lane_quiet_when_its_interval_was_sent_gets_a_revised_speed() -> None:
    processor = _processor()
    processor.accept([SensorEvent(T0 + 10, VEHICLE, 40.0, "L1")])
    processor.tick(T0 + 62)
    processor.tick(T0 + 122)  # 60-120 s went out as zero vehicles, with no mean speed
    processor.accept([SensorEvent(T0 + 90, VEHICLE, 30.0, "L1", 1.2)])
    assert _revised(processor.tick(T0 + 130)) == [
        ("L1", "vehicle_count", 60.0, 1.0, 1),
        ("L1", "mean_speed", 60.0, 30.0, 1),
        ("L1", "detector_occupancy", 60.0, 2.0, 1),
    ]


def test_detections_too_late_to_revise_are_counted_as_dropped() -> None:
    processor = _processor()  # revise_within_s = 600
    processor.accept([SensorEvent(T0 + 10, VEHICLE, 40.0, "L1")])
    processor.tick(T0 + 62)
    processor.tick(T0 + 700)
    processor.accept([SensorEvent(T0 + 30, VEHICLE, 40.0, "L1")])  # 640 s after 0-60 s ended
    assert [r for r in processor.tick(T0 + 701) if r.revision] == []
    assert (processor.traffic.late, processor.traffic.dropped) == (0, 1)


def test_the_interval_the_agent_started_in_is_not_sent_as_a_whole_count() -> None:
    clock = ClockGuard(valid_after=1_700_000_000, max_jump_s=120, settle_s=300)
    processor = Processor(
        "gw-1", ParkingSection(), TrafficSection(interval_s=60, grace_s=2), clock,
        started_at=T0 + 45,
    )  # fmt: skip
    processor.accept([SensorEvent(T0 + 50, VEHICLE, 40.0, "L1")])
    assert processor.tick(T0 + 62) == []  # it heard 15 s of 0-60 s: no count at all
    processor.accept([SensorEvent(T0 + 70, VEHICLE, 40.0, "L1")])
    assert _summary(processor.tick(T0 + 122))[0] == ("L1", "vehicle_count", 60.0, 1.0)
    processor.accept([SensorEvent(T0 + 40, VEHICLE, 40.0, "L1")])  # before it listened
    processor.tick(T0 + 123)
    assert processor.traffic.dropped == 1


def test_lamp_and_status_kinds_pass_through_and_bad_values_are_counted() -> None:
    processor = _processor()
    readings = processor.accept(
        [
            SensorEvent(T0, "lamp_power", 42.5),
            SensorEvent(T0, "lamp_dimming", 80.0),
            SensorEvent(T0, "lamp_dimming", 180.0),  # outside 0-100 %
            SensorEvent(T0, "no_such_kind", 1.0),
        ]
    )
    assert [(r.kind, r.value) for r in readings] == [("lamp_power", 42.5), ("lamp_dimming", 80.0)]
    assert processor.rejected == 2


def test_times_before_the_valid_epoch_are_flagged_clock_suspect() -> None:
    processor = _processor()
    early, good = processor.accept(
        [SensorEvent(1_000_000.0, "lamp_power", 1.0), SensorEvent(T0, "lamp_power", 2.0)]
    )
    assert early.clock_suspect
    assert not good.clock_suspect


def test_a_clock_jump_flags_readings_for_the_settle_time(monkeypatch: pytest.MonkeyPatch) -> None:
    guard = ClockGuard(valid_after=1_700_000_000, max_jump_s=120, settle_s=300)
    guard.sample()
    assert not guard.suspect(T0)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 3600)  # NTP stepped the clock an hour
    guard.sample()
    assert guard.jumps == 1
    assert guard.suspect(T0)
    assert not guard.synchronised
