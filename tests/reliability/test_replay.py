"""Bad input: readings sent three times, shuffled and replayed through real ingest are stored
once each, and the device's sequence shows no gap and no loss."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.ingest import (
    SITE,
    AckWatcher,
    IngestProcess,
    Publisher,
    count,
    readings,
    register,
    wait_log,
    wait_until,
)
from streetsense.config import Settings
from streetsense.readings import Reading
from streetsense.topics import Topics

pytestmark = pytest.mark.faults
DEVICES = [f"rep{i}" for i in range(4)]
PER_DEVICE = 600


def _packs(batch: list[Reading], size: int) -> list[list[Reading]]:
    return [batch[i : i + size] for i in range(0, len(batch), size)]


def _deliveries(chooser: random.Random) -> list[tuple[str, list[Reading]]]:
    """Return every reading three times: in order, shuffled singly, shuffled in odd packs."""
    by_device = {d: readings(d, 1, PER_DEVICE) for d in DEVICES}
    in_order = [(d, p) for d in DEVICES for p in _packs(by_device[d], 10)]
    singles = [(d, [r]) for d in DEVICES for r in by_device[d]]
    chooser.shuffle(singles)
    odd = []
    for device in DEVICES:
        mixed = list(by_device[device])
        chooser.shuffle(mixed)
        odd += [(device, p) for p in _packs(mixed, 7)]
    chooser.shuffle(odd)
    return in_order + singles + odd


def _confirm_all(publisher: Publisher, acks: AckWatcher, last_seq: int) -> bool:
    """Publish one new reading per device behind everything else; wait for its confirmation."""
    for device in DEVICES:
        publisher.send_readings(SITE, device, readings(device, last_seq, 1))
    return wait_until(lambda: all(acks.acks.get(d) == last_seq for d in DEVICES), 60)


def test_thrice_shuffled_and_replayed_readings_are_stored_once(
    settings: Settings, topics: Topics, tmp_path: Path, report: Callable[..., None]
) -> None:
    url = settings.database.url
    register(url, DEVICES)
    ingest = IngestProcess(settings, "ingest-replay", tmp_path / "ingest.log").start()
    assert wait_log(ingest.log_path, "subscribed; ingesting")
    publisher = Publisher(settings.mqtt.url, topics)
    acks = AckWatcher(settings.mqtt.url, topics)
    deliveries = _deliveries(random.Random(8))
    try:
        for device, pack in deliveries:
            publisher.send_readings(SITE, device, pack)
        assert _confirm_all(publisher, acks, PER_DEVICE + 1), "ingest never confirmed"
        # Replayed later, after an ingest restart: the whole first pass again.
        assert ingest.terminate() == 0
        ingest.start()
        assert wait_log(ingest.log_path, "subscribed; ingesting", occurrences=2)
        replay = [(d, p) for d, p in deliveries[: len(DEVICES) * PER_DEVICE // 10]]
        for device, pack in replay:
            publisher.send_readings(SITE, device, pack)
        assert _confirm_all(publisher, acks, PER_DEVICE + 2), "ingest never confirmed the replay"
    finally:
        publisher.close()
        acks.close()
        if ingest.alive():
            ingest.terminate()
    unique = len(DEVICES) * (PER_DEVICE + 2)
    sent = sum(len(p) for _, p in deliveries + replay) + 2 * len(DEVICES)
    rows = count(url, "SELECT count(*) FROM readings")
    distinct = count(url, "SELECT count(DISTINCT (device_id, seq)) FROM readings")
    keys = count(url, "SELECT count(DISTINCT (device_id, kind, sub_id, observed_at)) FROM readings")
    lost = count(url, "SELECT coalesce(sum(lost), 0) FROM device_sequences")
    contiguous = count(url, "SELECT min(contiguous_seq) FROM device_sequences")
    report("replay_thrice_shuffled", sent=sent, unique=unique, stored=rows,
           duplicated=rows - distinct, lost=unique - distinct, sequence_lost=lost)  # fmt: skip
    assert (rows, distinct, keys) == (unique, unique, unique)
    assert (lost, contiguous) == (0, PER_DEVICE + 2)
