"""Fault 1 on a clustered broker: a node of a 3-node NATS cluster SIGKILLed mid-stream.

Real agents (confirmation by ingest) and real ingest on `mqtt.url` listing the three nodes;
NATS keeps MQTT sessions in JetStream, replicated on every node, so whoever loses its node
resumes its session on another. The killed node stays dead until the end: every reading
must arrive through the other two. 4 agents x 1,000 readings (CI sizes).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from harness.fleet import FleetRun, run_fleet
from harness.nats import NatsCluster
from streetsense.config import Settings
from streetsense.partition import Partition
from streetsense.topics import Channel, Topics
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


def test_partitioned_ingest_process_killed_resumes_its_part_from_its_session(
    nats_cluster: NatsCluster,
    settings: Settings,
    topics: Topics,
    tmp_path: Path,
    report: Callable[..., None],
) -> None:
    # gw-0 ... gw-5 hash two to each of three parts (by device); part 2 dies mid-stream
    run = FleetRun(agents=6, per_agent=1_000, ingests=3, partitioned=True,
                   fault="ingest-process", settle_timeout_s=90.0)  # fmt: skip
    figures = run_fleet(run, settings, topics, tmp_path, nats_cluster)
    report("cluster_partition_kill", **figures)
    assert figures["sent"] == run.agents * run.per_agent
    assert 0 < figures["sent_before_kill"] < figures["sent"], "the kill was not mid-stream"
    assert (figures["stored"], figures["lost"], figures["duplicated"]) == (figures["sent"], 0, 0)
    assert figures["still_buffered"] == 0
    # parts 1 and 3 lived throughout and wrote exactly their two devices' readings: nobody
    # took over the dead part's topics, and its own process did after its restart
    # (every kind of reading: the agents' status readings too)
    by_part = figures["written_by_part"]
    rows = rows_by_part(settings.database.url, topics, 3)
    assert (by_part[0], by_part[2]) == (rows[1], rows[3])
    assert rows[1] >= 2 * run.per_agent and rows[3] >= 2 * run.per_agent
    assert 0 < by_part[1] <= rows[2]


def rows_by_part(database_url: str, topics: Topics, parts: int) -> dict[int, int]:
    """Return part -> rows in readings of the devices whose topics the part owns."""
    partition = Partition(1, parts, "device", topics.prefix)
    with psycopg.connect(database_url) as conn:
        found = conn.execute("SELECT device_id, count(*) FROM readings GROUP BY device_id")
        counts = {str(device): int(n) for device, n in found.fetchall()}
    totals = dict.fromkeys(range(1, parts + 1), 0)
    for device, n in counts.items():
        totals[partition.part_of(topics.device("s", device, Channel.LIGHT).encode())] += n
    return totals
