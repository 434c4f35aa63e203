"""Fixtures of the fleet tests: a broker with dynamic security, the city, the fleet service."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.batches import create_batch
from fleet.context import Fleet
from harness.dynsec_broker import HAVE_DYNSEC, DynsecBroker, start_dynsec_broker
from harness.fleet_agents import fleet_service, load_city
from harness.ingest import ingest_thread
from harness.releases import ReleaseKeys, release_keys
from ingest.service import IngestService
from streetsense.config import Settings, with_overrides
from streetsense.fleet_protocol import FleetTopics
from streetsense.topics import Topics

REPO = Path(__file__).resolve().parents[2]
BATCH = "b1"
needs_dynsec = pytest.mark.skipif(not HAVE_DYNSEC, reason="no Mosquitto dynamic security plugin")


@pytest.fixture
def fleet_topics(topics: Topics) -> FleetTopics:
    """Return a fleet topic root of this test's own."""
    return FleetTopics(topics.prefix.rsplit("/", 2)[0] + "/streetsense/fleet/v1")


@pytest.fixture
def dynsec(tmp_path: Path, topics: Topics, fleet_topics: FleetTopics) -> Iterator[DynsecBroker]:
    """Return a private broker with dynamic security, prepared for streetsense."""
    if not HAVE_DYNSEC:
        pytest.skip("no Mosquitto dynamic security plugin")
    broker = start_dynsec_broker(
        tmp_path / "broker", topics, fleet_topics, {"fleet": "fleet", "ingest-1": "ingest"}
    )
    yield broker
    broker.stop()


@pytest.fixture
def fleet_city(database_url: str) -> str:
    """Return the database URL with a site, a lot and a segment registered."""
    load_city(database_url)
    return database_url


@pytest.fixture
def fleet_settings(settings: Settings, dynsec: DynsecBroker, fleet_city: str) -> Settings:
    """Return the fleet service's settings on this test's broker and database."""
    del fleet_city
    return dynsec.settings(settings, "fleet")


@pytest.fixture
def fleet(fleet_settings: Settings) -> Iterator[Fleet]:
    """Run the fleet service; return a Fleet for the test's own commands."""
    with fleet_service(fleet_settings) as handle:
        yield handle


@pytest.fixture
def batch_secret(fleet: Fleet, tmp_path: Path) -> Path:
    """Make batch b1 and return the file of its bootstrap secret."""
    path = tmp_path / f"{BATCH}.secret"
    create_batch(fleet, BATCH, "test", path)
    return path


@pytest.fixture
def ingest(settings: Settings, dynsec: DynsecBroker) -> Iterator[IngestService]:
    """Run ingest in a thread as ingest-1 on the dynamic security broker."""
    ingest_settings = with_overrides(
        dynsec.settings(settings, "ingest-1"), ingest={"metrics_port": 0}
    )
    with ingest_thread(ingest_settings, client_id="ingest-1") as service:
        yield service


def fleet_cli(
    settings: Settings, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run `streetsense fleet ARGS` as an operator does, with the fleet service's settings."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("STREETSENSE_")}
    env.update(
        STREETSENSE_DATABASE_URL=settings.database.url,
        STREETSENSE_DATABASE_TIMESCALE="off",
        STREETSENSE_MQTT_URL=settings.mqtt.url,
        STREETSENSE_MQTT_TOPIC_PREFIX=settings.mqtt.topic_prefix,
        STREETSENSE_MQTT_USERNAME=settings.mqtt.username,
        STREETSENSE_MQTT_PASSWORD_FILE=settings.mqtt.password_file,
        STREETSENSE_MQTT_CA_FILE=settings.mqtt.ca_file,
        STREETSENSE_FLEET_TOPIC_PREFIX=settings.fleet.topic_prefix,
        PYTHONPATH=str(REPO),
    )
    return subprocess.run(
        [sys.executable, "-m", "streetsense.cli", "fleet", *args, "--by", "tester"]
        if args and args[0] in ("approve", "refuse", "revoke", "rotate", "reset")
        else [sys.executable, "-m", "streetsense.cli", "fleet", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def serial_of(n: int) -> str:
    """Return a test serial number."""
    return f"SN-{n:04d}-{uuid.uuid4().hex[:4]}"


@pytest.fixture
def keys(tmp_path: Path) -> ReleaseKeys:
    """A release signing key pair for this test."""
    return release_keys(tmp_path / "keys")
