"""Ingest's loss counter (`device_sequences.lost`) must count only readings a device really had.

The edge agent numbers readings from the epoch millisecond of its buffer's creation (so numbers
keep rising even if the buffer is re-created) and sends `seq_floor` = its oldest buffered seq.
Ingest assumes a device first seen numbers from 1, so the floor "closes" a gap of ~1.8e12
readings that never existed and counts them all as lost.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from harness.edge import AgentProcess, agent_config, ingest_secret, wait_for
from harness.ingest import IngestProcess, count, wait_log
from streetsense.config import Settings, with_overrides
from streetsense.topics import Topics

pytestmark = pytest.mark.faults


def test_a_real_agent_that_lost_nothing_shows_no_sequence_loss(
    settings: Settings,
    topics: Topics,
    broker: str,
    tmp_path: Path,
    report: Callable[..., None],
) -> None:
    settings = with_overrides(settings, ingest={"auto_register": True})
    ingest = IngestProcess(settings, "ingest-seq", tmp_path / "ingest.log").start()
    config = agent_config(
        tmp_path / "agent.toml", broker, topics,
        secret=ingest_secret(settings.database.url), driver={"event_rate": 50.0},
    )  # fmt: skip
    agent = AgentProcess(config)
    try:
        assert wait_log(ingest.log_path, "subscribed; ingesting")
        agent.start()
        wait_for(lambda: agent.state()["acked"] >= agent.state()["first_seq"] + 50, 30,
                 "50 confirmed readings")  # fmt: skip
        agent.stop()
        state = agent.state()
    finally:
        agent.kill()
        ingest.terminate()
    url = settings.database.url
    lost = count(url, "SELECT lost FROM device_sequences WHERE device_id = 'gw-1'")
    stored = count(url, "SELECT count(*) FROM readings WHERE device_id = 'gw-1' AND seq > 0")
    report("sequence_loss_counter", first_seq=state["first_seq"], acked=state["acked"],
           stored=stored, dropped=state["buffer_dropped"], counted_lost=lost)  # fmt: skip
    assert state["buffer_dropped"] == 0
    assert lost == 0
