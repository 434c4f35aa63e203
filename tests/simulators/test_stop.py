"""A simulator stops promptly on SIGTERM even when its broker hangs mid-stream.

Synchronised on what the broker and the simulator say, not on sleeps: the broker hangs once a
subscriber saw part of the backfill (far from all of it, whatever the machine's speed), and
SIGTERM comes once the simulator says it is waiting for acknowledgements.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from harness.ingest import wait_log, wait_until
from harness.mqtt import close_client
from harness.services import REPO, Mosquitto

# The run waits up to 5 s for the broker's acks once stopped; a hung broker held it for
# 60 s (a publish waiting for its window) plus 120 s and 10 s of flushes before.
PROMPT_S = 15.0
# Messages seen before the broker hangs: a small part of 40 lots' 5-day backfill. A window of
# 20 unacknowledged messages then fills within a few more, however slow the machine.
SEEN_BEFORE_HANG = 200
# the stall notice (INFO), not the timeout error that also names the silence
STALLED = "messages wait for it"


@pytest.fixture
def hung_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path / "broker").start()
    yield broker
    assert broker.process is not None
    broker.process.send_signal(signal.SIGCONT)
    broker.stop()


class _Counter:
    """Count what the broker delivers of the simulator's stream."""

    def __init__(self, broker: Mosquitto) -> None:
        self.count = 0
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="stop-test-counter")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port)
        self.client.subscribe("streetsense/v1/#", qos=0)
        self.client.loop_start()

    def _on_message(self, *_args: object) -> None:
        with self._lock:
            self.count += 1


def test_simulate_run_stops_promptly_when_the_broker_hangs(
    hung_broker: Mosquitto, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREETSENSE_")}
    env.update(STREETSENSE_MQTT_URL=hung_broker.url, PYTHONPATH=str(REPO))
    log = tmp_path / "simulate.log"
    counter = _Counter(hung_broker)
    with log.open("wb") as out:
        simulator = subprocess.Popen(
            [sys.executable, "-m", "streetsense.cli", "simulate", "run", "--lots", "40",
             "--segments", "20", "--backfill", "5d", "--duration", "1h", "--window", "20"],
            env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        # backfilling, as fast as the broker acknowledges
        assert wait_until(lambda: counter.count >= SEEN_BEFORE_HANG, 120), log.read_text()
        assert hung_broker.process is not None
        hung_broker.process.send_signal(signal.SIGSTOP)  # the broker hangs: no more PUBACKs
        assert simulator.poll() is None, log.read_text()
        # the publisher's window fills and it waits for acknowledgements
        assert wait_log(log, STALLED, 60), log.read_text()[-2000:]
        simulator.send_signal(signal.SIGTERM)
        began = time.monotonic()
        code = simulator.wait(PROMPT_S + 30)
        took = time.monotonic() - began
    finally:
        if simulator.poll() is None:
            simulator.kill()
            simulator.wait(10)
        hung_broker.process.send_signal(signal.SIGCONT)  # type: ignore[union-attr]
        close_client(counter.client)
    said = log.read_text()
    assert took < PROMPT_S, f"stopped after {took:.1f} s: {said[-2000:]}"
    assert code == 0, said[-2000:]
    assert "unacknowledged" in said  # it says what it could not confirm
