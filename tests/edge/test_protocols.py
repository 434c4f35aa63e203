"""The agent on MQTT 3.1.1 (`mqtt.protocol = "3.1.1"`), through real ingest, on amqtt and Mosquitto.

Readings are stored and confirmed (the buffer empties), the retained online status is there
for a late subscriber, and the Last Will marks the device offline after a power cut.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from harness.edge import AgentProcess, agent_config, ingest_secret, wait_for
from harness.ingest import ingest_thread
from harness.mqtt import close_client
from streetsense.config import Settings, with_overrides
from streetsense.demo.broker import EmbeddedBroker
from streetsense.readings import decode_readings
from streetsense.topics import Channel, Stream, Topics

READINGS = 40


@pytest.fixture(params=["amqtt", "mosquitto"])
def broker_311(request: pytest.FixtureRequest, broker: str) -> Iterator[str]:
    """Return the URL of a broker the agent reaches with MQTT 3.1.1."""
    if request.param == "mosquitto":
        yield broker
        return
    with EmbeddedBroker() as embedded:
        yield embedded.url


def _retained_status(url: str, topic: str) -> list[bytes]:
    """Subscribe late with MQTT 3.1.1 and return the retained payloads of `topic`."""
    parts = urlsplit(url)
    seen: list[bytes] = []
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"late-{uuid.uuid4().hex[:8]}",
        protocol=mqtt.MQTTv311,
    )  # fmt: skip
    # amqtt 0.12 has been seen delivering a retained message of another topic (the device's
    # ack) to this subscription: keep only what was published on `topic`.
    client.on_message = lambda _c, _u, message: (
        seen.append(bytes(message.payload)) if message.topic == topic else None
    )
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    client.loop_start()
    try:
        client.subscribe(topic, qos=1)
        wait_for(lambda: seen, 10, f"a retained message on {topic}")
    finally:
        close_client(client)
    return seen


def _online(database_url: str, device: str) -> Any:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT online FROM device_state WHERE device_id = %s", (device,)
        ).fetchone()
    return None if row is None else row[0]


def test_agent_on_mqtt_311_is_stored_confirmed_and_marked_offline_by_its_will(
    broker_311: str, settings: Settings, topics: Topics, tmp_path: Path
) -> None:
    settings = with_overrides(
        settings,
        mqtt={"url": broker_311, "protocol": "3.1.1", "shared_group": ""},
        # its will is trusted as from a broker that authenticates devices (tests/security)
        ingest={"auto_register": True, "trust_offline_status": True},
    )
    recording = tmp_path / "lamp.csv"
    start = time.time() - 120
    rows = [f"{start + i:.0f},lamp_power,{40 + i % 7}" for i in range(READINGS)]
    recording.write_text("time,name,value\n" + "\n".join(rows) + "\n")
    config = agent_config(
        tmp_path / "agent.toml", broker_311, topics,
        secret=ingest_secret(settings.database.url),
        mqtt={"protocol": "3.1.1"},
        driver={"kind": "replay", "path": str(recording), "speed": 40.0},
    )  # fmt: skip
    agent = AgentProcess(config)
    with ingest_thread(settings):
        agent.start()
        try:
            state = wait_for(
                lambda: (
                    (s := agent.state())["buffer_depth"] == 0
                    and s["next_seq"] - s["first_seq"] == READINGS
                    and s
                ),
                30,
                f"all {READINGS} readings confirmed by ingest",
            )
            status_topic = topics.device("central", "gw-1", Channel.STATUS)
            retained = _retained_status(broker_311, status_topic)
            online = decode_readings(retained[-1], "gw-1", Stream.STATUS).readings
            assert [(r.kind, r.value) for r in online] == [("online", 1.0)]
            agent.kill()  # a power cut: the broker publishes the Last Will
            wait_for(lambda: _online(settings.database.url, "gw-1") is False, 20, "offline")
        finally:
            agent.kill()
    assert state["acked"] == state["next_seq"] - 1, json.dumps(state)
    with psycopg.connect(settings.database.url) as conn:
        stored = conn.execute(
            "SELECT count(*), count(DISTINCT seq) FROM readings"
            " WHERE device_id = 'gw-1' AND kind = 'lamp_power'"
        ).fetchone()
    assert stored == (READINGS, READINGS), agent.log_text()
