"""A batch committed long after its messages arrived leaves a note for the rollup refresh."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from harness.ingest import SITE, readings, register
from ingest.batch import Batch
from ingest.classify import Classifier
from ingest.commit import commit_batch
from ingest.inbox import Message
from store.rollup_invalidations import LATE_COMMIT_AFTER
from store.writes import ReadingWriter
from streetsense.config import Settings
from streetsense.readings import encode_readings
from streetsense.topics import Channel, Topics

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)


def committed(settings: Settings, topics: Topics, held_s: float) -> list[tuple[object, ...]]:
    """Classify and commit one message received `held_s` ago; return the notes left."""
    register(settings.database.url, ["gw1", "gw2"])
    classifier = Classifier(settings.ingest, topics, {"gw1": SITE, "gw2": SITE})
    batch = Batch()
    received = time.time() - held_s
    for number, device in enumerate(("gw1", "gw2")):
        payload = encode_readings(readings(device, 1, 5, T0))
        topic = topics.device(SITE, device, Channel.PARKING)
        classifier.add(Message(topic, payload, number + 1, 1, False, received, 1), batch)
    assert len(batch.rows) == 10
    with psycopg.connect(settings.database.url, autocommit=True) as conn:
        commit_batch(conn, batch, 1024, ReadingWriter())
        return conn.execute("SELECT device_ids, observed_from FROM rollup_invalidations").fetchall()


def test_a_late_batch_notes_its_devices_from_its_earliest_reading(
    settings: Settings, topics: Topics
) -> None:
    notes = committed(settings, topics, LATE_COMMIT_AFTER.total_seconds() + 60)
    assert len(notes) == 1
    devices, observed_from = notes[0]
    assert devices == ["gw1", "gw2"]
    assert observed_from == min(r.observed_at for r in readings("gw1", 1, 5, T0))


@pytest.mark.parametrize("held_s", [0.0, LATE_COMMIT_AFTER.total_seconds() - 30])
def test_a_batch_in_time_leaves_no_note(settings: Settings, topics: Topics, held_s: float) -> None:
    assert committed(settings, topics, held_s) == []
