"""Ingest as a real process: SIGKILL mid-stream, two processes sharing, SIGTERM."""

from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path

import pytest

from harness.ingest import (
    IngestProcess,
    count,
    exactly_once,
    register,
    stream,
    wait_log,
    wait_until,
)
from streetsense.config import Settings
from streetsense.topics import Topics

log = logging.getLogger(__name__)
DEVICES = [f"dev{i}" for i in range(10)]


def report(record_property: pytest.RecordProperty, name: str, **figures: float) -> None:
    for key, value in figures.items():
        record_property(f"{name}_{key}", value)
    log.info("%s: %s", name, ", ".join(f"{k}={v}" for k, v in figures.items()))


def test_sigkill_mid_stream_stores_every_reading_once(
    settings: Settings, topics: Topics, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    register(settings.database.url, DEVICES)
    url = settings.database.url
    ingest = IngestProcess(settings, "ingest-kill", tmp_path / "ingest.log").start()
    assert wait_log(ingest.log_path, "subscribed; ingesting")
    sent: list[int] = []
    publisher = threading.Thread(
        target=lambda: sent.append(stream(settings.mqtt.url, topics, DEVICES, 2_000, 10, 20, 0.05))
    )
    publisher.start()
    assert wait_until(lambda: count(url, "SELECT count(*) FROM readings") > 2_000)
    ingest.kill()
    killed_at = time.monotonic()
    ingest.start()
    publisher.join(120)
    assert wait_until(lambda: count(url, "SELECT count(*) FROM readings") >= sent[0], 60)
    recovery = time.monotonic() - killed_at
    assert ingest.terminate() == 0
    rows, distinct = exactly_once(url)
    report(
        record_property,
        "sigkill",
        sent=sent[0],
        stored=rows,
        duplicated=rows - distinct,
        lost=sent[0] - distinct,
        recovery_s=round(recovery, 2),
    )
    assert (rows, distinct) == (sent[0], sent[0])


def test_two_processes_split_a_stream(
    settings: Settings, topics: Topics, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    register(settings.database.url, DEVICES)
    url = settings.database.url
    pair = [IngestProcess(settings, f"ingest-{n}", tmp_path / f"{n}.log").start() for n in "ab"]
    for ingest in pair:
        assert wait_log(ingest.log_path, "subscribed; ingesting")
    sent = stream(settings.mqtt.url, topics, DEVICES, 2_000, 10)
    assert wait_until(lambda: count(url, "SELECT count(*) FROM readings") >= sent, 60)
    shares = []
    for ingest in pair:
        assert ingest.terminate() == 0  # SIGTERM: flush, commit, ack, disconnect
        match = re.search(r"ingest stopped: (\d+) messages", ingest.log_path.read_text())
        assert match, "no clean-shutdown summary in the log"
        shares.append(int(match[1]))
    rows, distinct = exactly_once(url)
    report(
        record_property,
        "shared",
        sent=sent,
        stored=rows,
        duplicated=rows - distinct,
        lost=sent - distinct,
        share_a=shares[0],
        share_b=shares[1],
    )
    assert (rows, distinct) == (sent, sent)
    assert min(shares) > 0.2 * sum(shares)  # both took a real part of the load
