"""Fault 1 on a clustered broker: a node of a 3-node NATS cluster SIGKILLed mid-stream.

Real agents (confirmation by ingest) and real ingest on `mqtt.url` listing the three nodes;
NATS keeps MQTT sessions in JetStream, replicated on every node, so whoever loses its node
resumes its session on another. The killed node stays dead until the end: every reading
must arrive through the other two. 4 agents x 1,000 readings (CI sizes).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from harness.fleet import FleetRun, run_fleet
from harness.nats import NatsCluster
from streetsense.config import Settings
from streetsense.topics import Topics
from tests.support.cluster import nats_cluster

__all__ = ["nats_cluster"]
pytestmark = [pytest.mark.faults, pytest.mark.cluster]


@pytest.mark.parametrize("fault", ["ingest-node", "agents-node"])
def test_a_node_killed_mid_stream_loses_and_doubles_nothing(
    fault: str,
    nats_cluster: NatsCluster,
    settings: Settings,
    topics: Topics,
    tmp_path: Path,
    report: Callable[..., None],
) -> None:
    run = FleetRun(agents=4, per_agent=1_000, fault=fault, settle_timeout_s=90.0)
    figures = run_fleet(run, settings, topics, tmp_path, nats_cluster)
    report(f"cluster_{fault.replace('-', '_')}_kill", **figures)
    assert figures["sent"] == run.agents * run.per_agent
    assert 0 < figures["sent_before_kill"] < figures["sent"], "the kill was not mid-stream"
    assert (figures["stored"], figures["lost"], figures["duplicated"]) == (figures["sent"], 0, 0)
    assert figures["still_buffered"] == 0
    # the node's clients moved: ingest to another node, or at least one agent off the dead one
    assert figures["its_clients"], "nobody was connected to the killed node"
    if fault == "ingest-node":
        assert "ingest" in figures["its_clients"].split(",")
        assert figures["ingest_now_at"] != figures["killed"]
    else:
        assert "ingest" not in figures["its_clients"].split(",")
