"""Forged confirmations: only an ack real ingest signed for a device deletes its buffered readings.

The attack: on a broker that lets anyone publish on `.../ack` (deploy/mosquitto/streetsense.conf
is anonymous on loopback; the demo's amqtt too), one anonymous publish of `{"seq": N}` made a
real agent drop unconfirmed readings that were never stored. Real agent process, the test
broker started from streetsense.conf, real ingest and database; the agent's key comes from
`streetsense registry key`, as an installer gets it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from harness.edge import AgentProcess, agent_config, wait_for
from harness.ingest import ingest_thread, settings_env
from harness.mqtt import close_client
from harness.services import REPO
from streetsense.config import Settings, with_overrides
from streetsense.confirm import device_key, sign_ack
from streetsense.topics import Channel, Topics

DEVICE = "gw-1"
SITE = "central"


@pytest.fixture
def agents() -> Iterator[list[AgentProcess]]:
    started: list[AgentProcess] = []
    yield started
    for agent in started:
        agent.kill()


def _publish_as_stranger(broker: str, topic: str, payloads: list[bytes]) -> None:
    """Publish retained at QoS 1 as an anonymous client, as the attacker did."""
    parts = urlsplit(broker)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="stranger")
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    client.loop_start()
    try:
        for payload in payloads:
            client.publish(topic, payload, qos=1, retain=True).wait_for_publish(10)
    finally:
        close_client(client)


def _registry_key(settings: Settings, device: str, folder: Path) -> Path:
    """Run `streetsense registry key DEVICE --out FOLDER`, as an installer would."""
    result = subprocess.run(
        [sys.executable, "-m", "streetsense.cli", "registry", "key", device, "--out", str(folder)],
        env=settings_env(settings) | {"PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return folder / f"{device}.key"


def _stored_seqs(database_url: str) -> set[int]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT seq FROM readings WHERE device_id = %s", (DEVICE,)).fetchall()
    return {row[0] for row in rows}


def test_forged_acks_delete_nothing_and_ingests_own_confirm(
    settings: Settings, broker: str, topics: Topics, tmp_path: Path, agents: list[AgentProcess]
) -> None:
    settings = with_overrides(settings, ingest={"auto_register": True})
    key_file = _registry_key(settings, DEVICE, tmp_path / "keys")
    config = agent_config(
        tmp_path / "agent.toml", broker, topics, device=DEVICE, key_file=key_file,
        driver={"event_rate": 50.0},
    )  # fmt: skip
    agent = AgentProcess(config).start()
    agents.append(agent)
    # No ingest yet: everything the agent read is unconfirmed, held in its buffer.
    before = wait_for(lambda: (s := agent.state())["buffer_depth"] >= 20 and s, 30, "20 readings")
    held_up_to = before["next_seq"] - 1
    ack_topic = topics.device(SITE, DEVICE, Channel.ACK)
    wrong_key = device_key(bytes(32), DEVICE)
    other_device = device_key(os.urandom(32), "gw-2")
    _publish_as_stranger(
        broker,
        ack_topic,
        [
            f'{{"seq": {held_up_to}}}'.encode(),  # the attack as found: unsigned
            sign_ack(wrong_key, SITE, DEVICE, held_up_to, 0),  # signed, but with a guessed key
            sign_ack(other_device, SITE, "gw-2", held_up_to, 0),  # another device's ack
            b'{"seq": 1, "t": 0, "mac": "00"}',
        ],
    )
    refused = wait_for(lambda: (s := agent.state())["acks_refused"] >= 4 and s, 30, "refusals")
    assert refused["acked"] == before["acked"]  # nothing confirmed...
    assert refused["buffer_depth"] >= before["buffer_depth"]  # ...and nothing deleted
    # Ingest's own, signed acks do confirm, and only what it stored.
    with ingest_thread(settings):
        confirmed = wait_for(
            lambda: (s := agent.state())["acked"] > held_up_to and s, 40, "ingest's confirmation"
        )
    stored = _stored_seqs(settings.database.url)
    assert set(range(before["first_seq"], confirmed["acked"] + 1)) <= stored
    assert confirmed["acks_refused"] == refused["acks_refused"]


def test_an_agent_without_a_key_keeps_every_reading_and_check_says_why(
    settings: Settings, broker: str, topics: Topics, tmp_path: Path, agents: list[AgentProcess]
) -> None:
    settings = with_overrides(settings, ingest={"auto_register": True})
    config = agent_config(
        tmp_path / "agent.toml", broker, topics, device=DEVICE, secret=None,
        driver={"event_rate": 50.0},
    )  # fmt: skip
    agent = AgentProcess(config).start()
    agents.append(agent)
    with ingest_thread(settings):
        # ingest stores what it receives and confirms it; the agent cannot verify any of it
        wait_for(lambda: len(_stored_seqs(settings.database.url)) >= 20, 30, "20 stored")
        state: dict[str, Any] = wait_for(
            lambda: (s := agent.state())["acks_refused"] >= 1 and s, 30, "a refused ack"
        )
    assert state["confirm_key"] is False
    assert state["acked"] == 0
    assert state["buffer_depth"] == state["accepted"]  # every reading still held
    checked = _edge("check", config)
    assert checked.returncode != 0
    assert "streetsense registry key" in checked.stdout + checked.stderr
    status = _edge("status", config).stdout
    assert "key MISSING" in status
    assert "fix: install the confirmation key" in status


def _edge(command: str, config: Path) -> subprocess.CompletedProcess[str]:
    """Run `streetsense-edge COMMAND --config CONFIG`, as a field engineer would."""
    return subprocess.run(
        [sys.executable, "-m", "edge.cli", command, "--config", str(config)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=False,
    )
