"""A broker that cannot prove who it is (a certificate from another CA) is refused by every client.

An impostor on the broker's address (DNS spoofing, a hostile Wi-Fi on a street cabinet's
uplink) must get neither a device's readings nor a service's password. Every client of ours
builds its TLS context in one place (streetsense/broker.py); each is tried here against the
secure sample broker with the CA of another authority, and each says what to fix.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
from pathlib import Path

import aiomqtt
import pytest

from feeds.republish import client_options
from harness.ingest import wait_until
from ingest.doctor import FAIL, check_broker
from ingest.inbox import Inbox
from ingest.link import BrokerLink
from ingest.metrics import IngestMetrics
from simulators.mqtt import PacedPublisher
from streetsense.config import Settings, with_overrides
from streetsense.errors import ServiceUnavailableError
from tests.deploy.test_mosquitto_secure import SecureBroker, secure_broker
from tests.support.secure_broker import DEPLOY

__all__ = ["secure_broker"]
NOT_TRUSTED = "the broker's certificate is not trusted"


@pytest.fixture(scope="module")
def impostor_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return the CA certificate of an authority that did not sign the broker's certificate."""
    workdir = tmp_path_factory.mktemp("impostor-ca")
    subprocess.run([str(DEPLOY / "make-certs"), str(workdir)], check=True, capture_output=True)
    return workdir / "ca.crt"


@pytest.fixture
def trusting_the_wrong_ca(
    settings: Settings, secure_broker: SecureBroker, impostor_ca: Path, tmp_path: Path
) -> Settings:
    password = tmp_path / "password"
    password.write_text(secure_broker.passwords["ingest-1"] + "\n")
    return with_overrides(
        settings,
        mqtt={
            "url": f"ssl://localhost:{secure_broker.port}",
            "topic_prefix": "streetsense/v1",
            "username": "ingest-1",
            "password_file": str(password),
            "ca_file": str(impostor_ca),
        },
    )


def test_doctor_refuses_and_names_the_ca_setting(trusting_the_wrong_ca: Settings) -> None:
    [check] = check_broker(trusting_the_wrong_ca)
    assert check.status == FAIL
    assert NOT_TRUSTED in check.fix
    assert "STREETSENSE_MQTT_CA_FILE" in check.fix


def test_the_simulators_refuse(trusting_the_wrong_ca: Settings) -> None:
    with (
        pytest.raises(ServiceUnavailableError, match=NOT_TRUSTED),
        PacedPublisher(trusting_the_wrong_ca, role="impostor-test"),
    ):
        pass


def test_ingest_refuses_and_says_why_each_time_it_tries(
    trusting_the_wrong_ca: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    link = BrokerLink(trusting_the_wrong_ca, Inbox(100), IngestMetrics(), "ingest-1")
    caplog.set_level(logging.ERROR, "ingest.link")
    link.start()
    try:
        # paho retries in the background; each failed attempt is logged with its cause
        assert wait_until(lambda: NOT_TRUSTED in caplog.text, 20), caplog.text
        assert "STREETSENSE_MQTT_CA_FILE" in caplog.text
        assert not link.connected.is_set()
    finally:
        link.stop()


def test_the_feeds_republisher_refuses(trusting_the_wrong_ca: Settings) -> None:
    async def connect() -> None:
        async with aiomqtt.Client(**client_options(trusting_the_wrong_ca)):  # type: ignore[arg-type]
            pass

    with pytest.raises(aiomqtt.MqttError, match="CERTIFICATE_VERIFY_FAILED"):
        asyncio.run(connect())
