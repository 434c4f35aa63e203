"""The edge agent's broker loss on a clustered broker: one node of a 3-node NATS cluster dies.

A real agent (3.1.1, confirmation by ingest) replaying 2,000 readings and real ingest, both on
`mqtt.url` listing the three nodes, start on different nodes; the node of one of them is
SIGKILLed while readings flow and stays dead. Every reading is stored exactly once and none
stays buffered.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from harness.edge import AgentProcess, agent_config, ingest_secret, report, wait_for
from harness.fleet import ingest_node, replay_file
from harness.ingest import IngestProcess
from harness.nats import NatsCluster
from streetsense.broker import Failover, broker_target
from streetsense.config import MqttSettings, Settings, with_overrides
from streetsense.topics import Topics
from tests.edge.test_faults import DEVICE, _assert_nothing_lost, cleanup, figures
from tests.support.cluster import nats_cluster

__all__ = ["cleanup", "nats_cluster"]
pytestmark = [pytest.mark.faults, pytest.mark.cluster]
READINGS = 2_000


def _start_node(url: str, client_id: str) -> str:
    return str(Failover(broker_target(MqttSettings(url=url)), client_id).next_attempt())


@pytest.mark.parametrize("victim", ["agent", "ingest"])
def test_the_node_of_the_agent_or_of_ingest_dies_and_nothing_is_lost(
    victim: str,
    nats_cluster: NatsCluster,
    settings: Settings,
    topics: Topics,
    tmp_path: Path,
    cleanup: list[Any],
) -> None:
    url = nats_cluster.url
    # an ingest client id whose first node is not the agent's: each kill hits one of them
    ingest_id = next(
        f"ingest-edge-{n}"
        for n in range(20)
        if _start_node(url, f"ingest-edge-{n}") != _start_node(url, DEVICE)
    )
    settings = with_overrides(
        settings,
        mqtt={"url": url, "protocol": nats_cluster.protocol, "shared_group": ""},
        ingest={"auto_register": True},
    )
    ingest = IngestProcess(settings, ingest_id, tmp_path / "ingest.log").start()
    cleanup.append(ingest)
    assert ingest.wait_ready(30), "ingest did not subscribe"
    config = agent_config(
        tmp_path / "agent.toml", url, topics,
        secret=ingest_secret(settings.database.url),
        mqtt={"protocol": nats_cluster.protocol},
        buffer={"confirm": "ingest", "resend_timeout_s": 2.0},
        driver={"kind": "replay", "retime": True,
                "path": str(replay_file(tmp_path / "readings.csv", READINGS, 5))},
    )  # fmt: skip
    agent = AgentProcess(config).start()
    cleanup.append(agent)
    wait_for(lambda: agent.state()["acked"] > 0, 30, "ingest's first confirmation")
    agent_at = agent.state()["broker"].removeprefix("mqtt://")
    assert agent_at != ingest_node(ingest.log_path)
    node = nats_cluster.node_at(agent_at if victim == "agent" else ingest_node(ingest.log_path))
    # readings flow (200 a second) and are in flight when the node dies
    wait_for(lambda: agent.state()["published"] >= READINGS // 4, 30, "a quarter published")
    node.kill()
    killed_at = time.monotonic()
    if victim == "agent":
        wait_for(lambda: agent.state()["broker"] not in ("", f"mqtt://{agent_at}"), 30,
                 "the agent to reach another node")  # fmt: skip
    else:
        wait_for(lambda: ingest_node(ingest.log_path) != node.address, 30,
                 "ingest to reach another node")  # fmt: skip
    last = agent.state()["first_seq"] + READINGS - 1
    wait_for(lambda: agent.state()["acked"] >= last, 90, "ingest to confirm every reading")
    agent.stop()
    state = agent.state()
    assert state["next_seq"] - state["first_seq"] == READINGS
    result = figures(settings.database.url, state)
    report(f"cluster: the {victim}'s node killed", **result,
           recovery_s=round(time.monotonic() - killed_at, 1))  # fmt: skip
    _assert_nothing_lost(result)
    assert result["still_buffered"] == 0
