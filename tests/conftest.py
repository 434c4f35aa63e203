"""Fixtures on real services: a fresh PostgreSQL database and MQTT topic prefix per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from harness.services import Mosquitto, database_admin_url, port_open
from store.migrate import migrate
from streetsense.broker import parse_url
from streetsense.config import DatabaseSettings, Settings, load_settings, with_overrides
from streetsense.topics import Topics


def _url_with_dbname(url: str, dbname: str) -> str:
    return psycopg.conninfo.make_conninfo(url, dbname=dbname)


@pytest.fixture(scope="session")
def admin_url() -> str:
    """Return the admin database URL, stopping the run with one message if it is down."""
    url = database_admin_url()
    try:
        with psycopg.connect(url, connect_timeout=5):
            pass
    except psycopg.OperationalError as exc:
        pytest.exit(
            f"PostgreSQL for tests is not reachable at {url}: {exc}. Start it "
            "(pg_ctlcluster --skip-systemctl-redirect 15 main start) or set "
            "STREETSENSE_TEST_DATABASE_URL.",
            returncode=3,
        )
    return url


@pytest.fixture(scope="session")
def template_database(admin_url: str) -> Iterator[str]:
    """Create one migrated template database per run; test databases are cloned from it."""
    name = f"ss_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with psycopg.connect(_url_with_dbname(admin_url, name)) as conn:
        migrate(conn, DatabaseSettings(timescale="off"))
    yield name
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def database_url(admin_url: str, template_database: str) -> Iterator[str]:
    """Return the URL of a fresh, migrated database of this test's own; dropped afterwards."""
    name = f"ss_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template_database)
            )
        )
    yield _url_with_dbname(admin_url, name)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection]:
    """Return an open connection to this test's database."""
    with psycopg.connect(database_url) as conn:
        yield conn


@pytest.fixture(scope="session")
def broker_protocol() -> str:
    """Return the MQTT version tests speak to the test broker: $STREETSENSE_TEST_MQTT_PROTOCOL
    (3.1.1 for a broker without MQTT 5, such as a NATS cluster), else 5."""
    protocol = os.environ.get("STREETSENSE_TEST_MQTT_PROTOCOL", "5")
    if protocol not in ("5", "3.1.1"):
        pytest.exit(f"STREETSENSE_TEST_MQTT_PROTOCOL = {protocol!r} must be 5 or 3.1.1", 3)
    return protocol


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Return the MQTT URL for tests: $STREETSENSE_TEST_MQTT_URL (one broker, or the nodes of
    a cluster), else a private Mosquitto started from deploy/mosquitto/streetsense.conf (the
    machine's broker keeps its defaults)."""
    external = os.environ.get("STREETSENSE_TEST_MQTT_URL")
    if external:
        _scheme, _user, nodes, _path = parse_url(external, "STREETSENSE_TEST_MQTT_URL")
        down = [str(node) for node in nodes if not port_open(node.host, node.port)]
        if down:
            pytest.exit(f"MQTT broker for tests is not reachable at {', '.join(down)}", 3)
        yield external
        return
    instance = Mosquitto(tmp_path_factory.mktemp("mosquitto"))
    try:
        instance.start()
    except (OSError, TimeoutError) as exc:
        pytest.exit(
            f"cannot start Mosquitto for tests: {exc}; install it (apt-get install "
            "mosquitto) or set STREETSENSE_TEST_MQTT_URL",
            returncode=3,
        )
    yield instance.url
    instance.stop()


@pytest.fixture
def topics() -> Topics:
    """Return a topic grammar under a prefix of this test's own."""
    return Topics(prefix=f"test-{uuid.uuid4().hex[:10]}/streetsense/v1")


@pytest.fixture
def settings(
    database_url: str, broker: str, broker_protocol: str, topics: Topics, tmp_path: Path
) -> Settings:
    """Return settings pointing at this test's database, the test broker and topic prefix."""
    base = load_settings(None, environ={})
    return with_overrides(
        base,
        database={"url": database_url, "timescale": "off"},
        mqtt={"url": broker, "topic_prefix": topics.prefix, "protocol": broker_protocol},
        ingest={"metrics_port": 0},
    )
