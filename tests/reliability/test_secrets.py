"""Security: secrets come from files or the environment and never reach a log, even at DEBUG.

Ingest and an edge agent run for real with a broker password (environment / file) and a
database password in the URL, once against live services and once with the service down (error
paths are where secrets leak: an exception quoting a connection string).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from harness.edge import agent_config
from harness.ingest import (
    REPO,
    SITE,
    Publisher,
    count,
    readings,
    settings_env,
    wait_log,
    wait_until,
)
from harness.services import free_port
from streetsense.config import Settings, with_overrides
from streetsense.topics import Topics

pytestmark = pytest.mark.faults
MQTT_SECRET = "mqtt-Pa55-7f3a9c"
DB_SECRET = "db-Pa55-91be0d"
EDGE_SECRET = "edge-Pa55-c0ffee"


def _with_password(url: str, password: str, port: int | None = None) -> str:
    """Return the database URL with a password (and another port, for a server that is down)."""
    params = psycopg.conninfo.conninfo_to_dict(url)
    port = port or int(str(params.get("port", 5432)))
    return f"postgresql://{params['user']}:{password}@{params['host']}:{port}/{params['dbname']}"


def _run(
    command: list[str],
    env: dict[str, str],
    log_path: Path,
    ready: str,
    during: Callable[[], None],
    done: Callable[[str], bool],
) -> str:
    """Run a service at DEBUG until `ready` is logged, call `during`, wait until `done(log)`
    says it did the work whose logging is checked; stop it."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, cwd=REPO, stdout=log, stderr=log)
    try:
        assert wait_log(log_path, ready, 20), log_path.read_text(errors="replace")
        during()
        assert wait_until(lambda: done(log_path.read_text(errors="replace")), 30)
    finally:
        process.terminate()
        process.wait(30)
    return log_path.read_text(errors="replace")


def _ingest(settings: Settings, topics: Topics, tmp_path: Path, database_up: bool) -> str:
    env = settings_env(settings)
    env.update(STREETSENSE_MQTT_USERNAME="ingest", STREETSENSE_MQTT_PASSWORD=MQTT_SECRET)
    command = [sys.executable, "-m", "streetsense.cli", "--log-level", "DEBUG", "ingest",
               "--client-id", f"ingest-secret-{database_up}"]  # fmt: skip

    def publish() -> None:  # work for ingest: a database write to log
        if not database_up:
            return
        publisher = Publisher(settings.mqtt.url, topics)
        publisher.send_readings(SITE, "dev-secret", readings("dev-secret", 1, 5))
        publisher.close()

    def done(text: str) -> bool:
        if database_up:  # the unknown device's message is quarantined: the database was used
            return bool(count(settings.database.url, "SELECT count(*) FROM quarantine"))
        return text.count("cannot reach PostgreSQL") >= 2  # a retry logged its error again

    ready = "subscribed" if database_up else "cannot reach PostgreSQL"
    return _run(command, env, tmp_path / "ingest.log", ready, publish, done)


@pytest.mark.parametrize("database_up", [True, False], ids=["services-up", "database-down"])
def test_ingest_logs_no_password_at_debug(
    database_up: bool,
    settings: Settings,
    topics: Topics,
    tmp_path: Path,
    report: Callable[..., None],
) -> None:
    # Nothing listens on a fresh free port: connection errors get logged.
    port = None if database_up else free_port()
    url = _with_password(settings.database.url, DB_SECRET, port)
    settings = with_overrides(settings, database={"url": url})
    text = _ingest(settings, topics, tmp_path, database_up)
    report(f"secrets_ingest_{'up' if database_up else 'down'}", log_lines=text.count("\n"),
           leaks=text.count(MQTT_SECRET) + text.count(DB_SECRET))  # fmt: skip
    # The database was used (the unknown device's message quarantined) or its failure logged.
    assert ("1 rejected" in text) if database_up else ("cannot reach PostgreSQL" in text)
    assert MQTT_SECRET not in text
    assert DB_SECRET not in text


@pytest.mark.parametrize("broker_up", [True, False], ids=["broker-up", "broker-down"])
def test_edge_agent_logs_no_password_at_debug(
    broker_up: bool,
    broker: str,
    topics: Topics,
    tmp_path: Path,
    report: Callable[..., None],
) -> None:
    secret_file = tmp_path / "password"
    secret_file.write_text(EDGE_SECRET + "\n")
    secret_file.chmod(0o600)
    url = broker if broker_up else f"mqtt://127.0.0.1:{free_port()}"
    config = agent_config(tmp_path / "agent.toml", url, topics,
                          mqtt={"username": "gw-1", "password_file": str(secret_file)})  # fmt: skip
    edge = [sys.executable, "-m", "edge.cli", "--log-level", "DEBUG"]
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    linked = "link up" if broker_up else "cannot connect"  # with the password, or failing
    text = _run(
        [*edge, "run", "--config", str(config)], env, tmp_path / "run.log", "running",
        lambda: None, lambda log: linked in log,
    )  # fmt: skip
    checked = subprocess.run(
        [*edge, "check", "--config", str(config)], env=env, cwd=REPO, capture_output=True,
        text=True, timeout=60, check=False,
    )  # fmt: skip
    text += checked.stdout + checked.stderr
    report(f"secrets_edge_{'up' if broker_up else 'down'}", log_lines=text.count("\n"),
           leaks=text.count(EDGE_SECRET))  # fmt: skip
    assert "running" in text
    assert EDGE_SECRET not in text
