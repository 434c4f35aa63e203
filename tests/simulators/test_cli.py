"""`streetsense simulate ...` as an operator runs it."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from streetsense.cli import main
from streetsense.registry import load_registry
from streetsense.topics import Topics
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
