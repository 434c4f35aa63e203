"""`streetsense simulate ...` as an operator runs it."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from simulators.city import CitySpec, agent_devices, generate_city
from streetsense.cli import main
from streetsense.readings import decode_readings
from streetsense.registry import load_registry
from streetsense.topics import DeviceTopic, Topics
from tests.simulators.conftest import Collector


@pytest.fixture
def env(
    monkeypatch: pytest.MonkeyPatch, broker: str, topics: Topics, tmp_path: Path
) -> Iterator[Path]:
    for name in ("STREETSENSE_CONFIG", "STREETSENSE_INGEST_LATE_WINDOW_S"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STREETSENSE_MQTT_URL", broker)
    monkeypatch.setenv("STREETSENSE_MQTT_TOPIC_PREFIX", topics.prefix)
    monkeypatch.chdir(tmp_path)
    # The commands install SIGINT/SIGTERM handlers, as a CLI should; give pytest its own back.
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield tmp_path
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_city_writes_a_registry_file(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "city", "--seed", "3", "--lots", "5", "--registry", "c.toml"]) == 0
    assert len(load_registry(env / "c.toml").lots) == 5
    assert "streetsense registry load c.toml" in capsys.readouterr().out


def test_run_backfills_history_and_remembers_sequences(
    env: Path, collector: Collector, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["simulate", "run", "--lots", "3", "--segments", "2", "--backfill", "3h"]
    assert main([*args, "--duration", "0s"]) == 0
    out = capsys.readouterr().out
    assert "backfill:" in out and "messages" in out
    assert collector.wait_for(10)
    assert (env / ".streetsense-sim" / "sequences-city.json").is_file()


def test_backfill_beyond_the_late_window_is_refused_with_the_fix(env: Path) -> None:
    args = ["simulate", "run", "--lots", "2", "--segments", "1", "--backfill", "28d"]
    assert main([*args, "--duration", "0s"]) == 2


def test_unknown_fault_is_refused(env: Path) -> None:
    assert main(["simulate", "scenario", "--fault", "gremlins", "--lots", "2"]) == 2


def test_speed_without_catch_up_is_refused(env: Path) -> None:
    args = ["simulate", "run", "--lots", "2", "--segments", "1", "--speed", "60"]
    assert main([*args, "--duration", "1s"]) == 2


def test_live_catches_up_at_speed_never_ahead_of_the_clock_and_leaves_agents_out(
    env: Path, collector: Collector, topics: Topics, capsys: pytest.CaptureFixture[str]
) -> None:
    began = time.time()
    args = ["simulate", "run", "--lots", "3", "--segments", "2", "--backfill", "2h",
            "--catch-up", "1h", "--speed", "1200", "--agent-lots", "1", "--agent-segments", "1",
            "--duration", "6s"]  # fmt: skip
    assert main(args) == 0
    assert "live, 2 devices left to real agents" in capsys.readouterr().out
    city = generate_city(CitySpec(seed=1, lots=3, segments=2))
    agents = set(agent_devices(city, 1, 1))
    live_from = began - 3_600 + 120  # after the backfill's end, with a margin
    observed: list[float] = []
    collector.wait_for(0)  # everything the broker acknowledged has reached the collector
    for (topic, payload), arrived in zip(collector.received, collector.arrivals, strict=True):
        parsed = topics.parse(topic)
        assert isinstance(parsed, DeviceTopic)
        if parsed.channel.stream is None:
            continue
        times = [
            r.observed_at.timestamp()
            for r in decode_readings(payload, parsed.device_id, parsed.channel.stream).readings
        ]
        # what ingest checks: nothing observed after it reached the broker
        assert max(times) <= arrived + 1.0, (topic, max(times) - arrived)
        if min(times) >= live_from:
            assert parsed.device_id not in agents, topic
            observed += times
    # the hour of catch-up was played in seconds, up to the present
    assert min(observed) < began - 3_000
    assert max(observed) > began - 900  # counts are observed at their interval's start
