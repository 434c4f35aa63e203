"""A live city keeps publishing across a broker crash (SIGKILL) and restart."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from harness.ingest import wait_until
from harness.services import Mosquitto
from simulators.city import CitySpec, generate_city
from simulators.demand import Calendar
from simulators.mqtt import PacedPublisher
from simulators.packs import SequenceBook
from simulators.runner import Tally, live
from simulators.world import Cadence
from streetsense.config import load_settings, with_overrides
from streetsense.lifecycle import StopSignal
from streetsense.topics import Topics
from tests.simulators.conftest import Collector

FAST = Cadence(
    parking_step_s=1, traffic_interval_s=2, counter_interval_s=2, lamp_interval_s=2,
    heartbeat_s=0, status_s=0,
)  # fmt: skip


@pytest.mark.faults
def test_live_run_resumes_after_the_broker_is_killed_and_restarted(
    tmp_path: Path, topics: Topics, caplog: pytest.LogCaptureFixture
) -> None:
    broker = Mosquitto(tmp_path / "broker").start()
    settings = with_overrides(
        load_settings(None, environ={}), mqtt={"url": broker.url, "topic_prefix": topics.prefix}
    )
    city = generate_city(CitySpec(seed=4, lots=3, segments=2))
    tallies: list[Tally] = []
    failures: list[BaseException] = []
    stop = StopSignal()

    def run() -> None:
        try:
            with PacedPublisher(settings, window=20, ack_timeout_s=1.0) as publisher:
                tallies.append(
                    live(
                        city, Calendar(seed=4), topics, publisher, SequenceBook(), stop,
                        chunk_s=1.0, window_s=1.0, cadence=FAST,
                    )
                )  # fmt: skip
        except BaseException as exc:  # the test reports it below
            failures.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    caplog.set_level(logging.WARNING, "simulators.mqtt")
    try:
        before = Collector(broker.url, topics)
        thread.start()
        try:
            assert before.wait_for(1, timeout=30), "the city did not start publishing"
        finally:
            before.close()
        broker.kill()
        # the publisher noticed the broker's death before the broker comes back
        assert wait_until(lambda: "disconnected from the broker" in caplog.text, 30)
        broker.start()
        collector = Collector(broker.url, topics)
        try:
            received = collector.wait_for(5, timeout=30)
        finally:
            collector.close()
        stop.stop()
        thread.join(40)
    finally:
        stop.stop()
        broker.stop()
    assert not thread.is_alive() and failures == []
    assert tallies and tallies[0].messages > 0
    assert len(received) >= 5  # published after the restart, to a subscriber that came later
