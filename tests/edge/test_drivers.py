"""Line protocol and the replay, command and serial-line (FIFO) drivers."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from edge.config import DriverSection
from edge.drivers import SensorDriver, SensorEvent, make_driver
from edge.drivers.lines import parse_line
from edge.drivers.replay import ReplayDriver
from edge.drivers.stream import CommandDriver, open_serial_line
from streetsense.errors import ConfigError, PayloadError


def _collect(driver: SensorDriver, count: int, timeout: float = 10.0) -> list[SensorEvent]:
    events: list[SensorEvent] = []
    deadline = time.monotonic() + timeout
    while len(events) < count and time.monotonic() < deadline:
        events += driver.poll(0.1)
    return events


def test_the_line_protocol_reads_text_and_json_lines() -> None:
    assert parse_line("1800000000.5 A1/presence true", 0) == SensorEvent(
        1_800_000_000.5, "presence", 1.0, "A1"
    )
    assert parse_line("- L2/vehicle 48.5 0.3", 99.0) == SensorEvent(
        99.0, "vehicle", 48.5, "L2", 0.3
    )
    assert parse_line('{"n": "lamp_power", "v": 40}', 7.0) == SensorEvent(7.0, "lamp_power", 40.0)
    assert parse_line("# a comment", 0) is None
    assert parse_line("   ", 0) is None


@pytest.mark.parametrize(
    ("line", "says"),
    [("1800000000 presence", "needs"), ("x presence 1", "time"), ("- lamp_power nan", "finite"),
     ('{"v": 1}', '"n"'), ("{not json", "JSON")],
)  # fmt: skip
def test_bad_lines_are_refused_with_the_reason(line: str, says: str) -> None:
    with pytest.raises(PayloadError, match=says):
        parse_line(line, 0)


def test_replay_of_a_csv_keeps_recorded_times_and_runs_accelerated(tmp_path: Path) -> None:
    recording = tmp_path / "spots.csv"
    recording.write_text(
        "time,name,value\n1800000000,A1/presence,1\n1800000030,A1/presence,maybe\n"
        "1800000060,A1/presence,0\n"
        "1800000120,lamp_power,40\n"
    )
    driver = ReplayDriver(str(recording), speed=600.0)
    events = _collect(driver, 3, timeout=5)
    assert [e.at for e in events] == [1_800_000_000, 1_800_000_060, 1_800_000_120]
    assert driver.finished  # the bad row was skipped, not fatal
    assert driver.now() >= 1_800_000_120
    driver.close()


def test_replay_refuses_a_file_without_the_header(tmp_path: Path) -> None:
    recording = tmp_path / "bad.csv"
    recording.write_text("when,what\n1,2\n")
    with pytest.raises(ConfigError, match="time,name,value"):
        ReplayDriver(str(recording))


def test_command_driver_reads_a_programs_stdout_and_skips_bad_lines() -> None:
    script = "print('- lamp_power 12'); print('garbage'); print('- lamp_dimming 50', flush=True)"
    driver = CommandDriver(f'{sys.executable} -c "{script}"')
    try:
        events = _collect(driver, 2)
    finally:
        driver.close()
    assert [(e.name, e.value) for e in events] == [("lamp_power", 12.0), ("lamp_dimming", 50.0)]
    assert driver.rejected == 1


def test_serial_line_reads_a_fifo_and_survives_the_writer_going_away(tmp_path: Path) -> None:
    fifo = tmp_path / "sensor.fifo"
    os.mkfifo(fifo)
    driver = open_serial_line(str(fifo), 9600)

    def write(text: str) -> None:
        with fifo.open("w") as pipe:
            pipe.write(text)

    def write_each(lines: list[str]) -> None:
        for line in lines:  # a writer that opens, writes one line and goes away, many times
            write(line)

    try:
        threading.Thread(target=write, args=("- A1/presence 1\n",), daemon=True).start()
        assert [e.sub_id for e in _collect(driver, 1)] == ["A1"]
        spots = [f"B{n}" for n in range(30)]
        lines = [f"- {spot}/presence 0\n" for spot in spots]
        threading.Thread(target=write_each, args=(lines,), daemon=True).start()
        assert [e.sub_id for e in _collect(driver, len(spots))] == spots
    finally:
        driver.close()
        # Unblock a reader thread waiting in open() so it sees the close (none waiting: ENXIO).
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


def test_the_simulated_driver_makes_distinct_millisecond_times() -> None:
    driver = make_driver(DriverSection(event_rate=2000.0, speed=1.0, spots=2, lanes=2))
    events = _collect(driver, 300)
    millis = [round(e.at * 1000) for e in events]
    assert millis == sorted(set(millis))
    assert {e.name for e in events} >= {"presence", "vehicle"}
