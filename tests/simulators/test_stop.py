"""A simulator stops promptly on SIGTERM even when its broker hangs mid-stream."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.services import REPO, Mosquitto

# The run waits up to 5 s for the broker's acks once stopped; a hung broker held it for
# 60 s (a publish waiting for its window) plus 120 s and 10 s of flushes before.
PROMPT_S = 15.0


@pytest.fixture
def hung_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path / "broker").start()
    yield broker
    assert broker.process is not None
    broker.process.send_signal(signal.SIGCONT)
    broker.stop()


def test_simulate_run_stops_promptly_when_the_broker_hangs(
    hung_broker: Mosquitto, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREETSENSE_")}
    env.update(STREETSENSE_MQTT_URL=hung_broker.url, PYTHONPATH=str(REPO))
    log = tmp_path / "simulate.log"
    with log.open("wb") as out:
        simulator = subprocess.Popen(
            [sys.executable, "-m", "streetsense.cli", "simulate", "run", "--lots", "200",
             "--segments", "100", "--backfill", "6d", "--duration", "1h"],
            env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        time.sleep(4.0)  # backfilling, as fast as the broker acknowledges
        assert simulator.poll() is None, log.read_text()
        assert hung_broker.process is not None
        hung_broker.process.send_signal(signal.SIGSTOP)  # the broker hangs: no more PUBACKs
        time.sleep(2.0)  # the publisher's window fills; it waits for acknowledgements
        simulator.send_signal(signal.SIGTERM)
        began = time.monotonic()
        code = simulator.wait(PROMPT_S + 30)
        took = time.monotonic() - began
    finally:
        if simulator.poll() is None:
            simulator.kill()
            simulator.wait(10)
    said = log.read_text()
    assert took < PROMPT_S, f"stopped after {took:.1f} s: {said[-2000:]}"
    assert code == 0, said[-2000:]
    assert "unacknowledged" in said  # it says what it could not confirm
