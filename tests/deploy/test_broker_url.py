"""Every client reads `mqtt.url` one way: doctor and ingest agree on TLS, WebSockets and versions.

The regression: with `ssl://broker:8883` doctor probed over TLS and reported success, then
ingest connected in plain text to the TLS listener and never came up.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.ingest import count, ingest_thread, wait_until
from ingest.doctor import FAIL, OK, check_broker
from simulators.mqtt import PacedPublisher
from streetsense.config import Settings, with_overrides
from streetsense.demo.broker import EmbeddedBroker, free_port
from streetsense.readings import Reading, encode_readings, epoch_to_datetime
from streetsense.topics import Channel, Topics
from tests.deploy.test_mosquitto_secure import SecureBroker, secure_broker

__all__ = ["secure_broker"]
PREFIX = "streetsense/v1"  # the sample ACL names the real prefix


def _as_ingest(settings: Settings, broker: SecureBroker, tmp_path: Path, url: str) -> Settings:
    password = tmp_path / "ingest-password"
    password.write_text(broker.passwords["ingest-1"] + "\n")
    return with_overrides(
        settings,
        mqtt={
            "url": url,
            "topic_prefix": PREFIX,
            "username": "ingest-1",
            "password_file": str(password),
            "ca_file": str(broker.ca_file),
        },
    )


@pytest.mark.parametrize("scheme", ["ssl", "mqtts"])
def test_doctor_and_ingest_both_use_tls_for_a_tls_scheme(
    scheme: str, settings: Settings, secure_broker: SecureBroker, tmp_path: Path
) -> None:
    tls = _as_ingest(
        settings, secure_broker, tmp_path, f"{scheme}://localhost:{secure_broker.port}"
    )
    checks = check_broker(tls)
    assert checks[0].status == OK, checks
    assert f"{scheme}://localhost:{secure_broker.port} accepts MQTT 5" in checks[0].detail
    # ingest_thread fails unless ingest subscribed: a plain-text client never gets a CONNACK
    with ingest_thread(tls, client_id="ingest-1") as service:
        assert service.link.connected.is_set()


def test_doctor_and_ingest_refuse_the_same_wrong_ca(
    settings: Settings, secure_broker: SecureBroker, tmp_path: Path
) -> None:
    wrong = _as_ingest(settings, secure_broker, tmp_path, f"ssl://localhost:{secure_broker.port}")
    wrong = with_overrides(wrong, mqtt={"ca_file": str(tmp_path / "missing-ca.pem")})
    checks = check_broker(wrong)
    assert checks[0].status == FAIL
    assert "mqtt.ca_file" in checks[0].fix


class _WebSocketBroker(EmbeddedBroker):
    """amqtt with one WebSocket listener (Debian's Mosquitto build cannot open one here)."""

    async def _start(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from amqtt.broker import Broker

        config = {
            "listeners": {"default": {"type": "ws", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
        self._broker = Broker(config)
        await self._broker.start()
        await asyncio.sleep(0)


@pytest.fixture
def websocket_broker() -> Iterator[str]:
    pytest.importorskip("amqtt")
    with _WebSocketBroker(free_port()) as broker:
        yield f"ws://{broker.host}:{broker.port}/mqtt"


def test_ingest_and_the_simulators_carry_readings_over_websockets(
    settings: Settings, websocket_broker: str, topics: Topics
) -> None:
    ws = with_overrides(
        settings,
        mqtt={"url": websocket_broker, "protocol": "3.1.1", "shared_group": ""},
        ingest={"auto_register": True},
    )
    checks = check_broker(ws)
    assert checks[0].status == OK, checks
    reading = Reading("ws-1", "battery", epoch_to_datetime(time.time()), 3.7)
    with ingest_thread(ws), PacedPublisher(ws, role="ws-test") as publisher:
        publisher.publish(
            topics.device("s1", "ws-1", Channel.STATUS), encode_readings([reading], seq_floor=1)
        )
        assert publisher.flush(10)
        stored = "SELECT count(*) FROM readings WHERE device_id = 'ws-1'"
        ok = wait_until(lambda: count(settings.database.url, stored) == 1, 20)
        assert ok, count(settings.database.url, "SELECT array_agg(reason) FROM rejected_messages")


def test_doctor_names_unsupported_protocol_version_and_the_setting_that_fixes_it(
    settings: Settings,
) -> None:
    pytest.importorskip("amqtt")
    with EmbeddedBroker() as amqtt_broker:  # MQTT 3.1.1 only, as the demo's broker
        checks = check_broker(with_overrides(settings, mqtt={"url": amqtt_broker.url}))
    assert checks[0].status == FAIL
    assert "unsupported protocol version (132)" in checks[0].detail
    assert "STREETSENSE_MQTT_PROTOCOL=3.1.1" in checks[0].fix
    assert "password" not in checks[0].fix
