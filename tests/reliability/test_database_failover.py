"""The database fails over: the Patroni leader SIGKILLed under ingest, analytics and feeds.

Two Patroni members in synchronous mode on a private etcd (Debian's patroni, etcd-server and
PostgreSQL 15). Real ingest, the analytics job and the feeds all use the multi-host URL with
`target_session_attrs=read-write`; a publisher streams 16,000 readings and the primary's
machine dies (Patroni, postmaster and backends SIGKILLed) a few thousand in. A commit that
synchronous replication acknowledged is on the replica that takes over, and ingest
acknowledges the broker only after commit: every reading is stored exactly once, without
restarting anything. The analytics job stores a new forecast on the new primary and the
feeds serve it.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
import pytest

from feeds.app import create_app
from feeds.server import FeedsServer, server_config
from harness.ingest import IngestProcess, count, register, stream, wait_until
from harness.patroni import HAVE_PATRONI, PatroniCluster
from harness.services import free_port
from streetsense.config import Settings, with_overrides
from streetsense.topics import Topics
from tests.analytics.test_job_cli import fill_city, job_environment, streetsense

pytestmark = [pytest.mark.faults, pytest.mark.cluster]
DEVICES = [f"gw-{n}" for n in range(8)]
PER_DEVICE = 2_000
KILL_AFTER_ROWS = 3_000


@pytest.fixture
def patroni() -> Iterator[PatroniCluster]:
    """Start etcd and two Patroni members (synchronous mode); stop and delete them after."""
    if not HAVE_PATRONI:
        pytest.fail(
            "etcd, patroni or PostgreSQL 15 is missing: the cluster tests need Debian's "
            "etcd-server, patroni and postgresql (scripts/setup --tests installs them)"
        )
    cluster = PatroniCluster()
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture
def feeds_on(tmp_path: Path) -> Iterator[Callable[[Settings], str]]:
    """Return a function that starts a feeds server in a thread; it stops after the test."""
    servers: list[tuple[FeedsServer, threading.Thread]] = []

    def start(settings: Settings) -> str:
        port = free_port()
        config = server_config(create_app(settings), "127.0.0.1", port, timeout_graceful_shutdown=1)
        server = FeedsServer(config)
        thread = threading.Thread(target=server.run, name="feeds", daemon=True)
        thread.start()
        servers.append((server, thread))
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(10)


def _forecast_issued(feeds: str) -> str | None:
    try:
        response = httpx.get(f"{feeds}/v1/parking/lots/lot-1/forecast", timeout=5)
    except httpx.TransportError:
        return None
    return response.json().get("issued_at") if response.status_code == 200 else None


def _latest_run(url: str) -> datetime | None:
    try:
        found: datetime | None = count(url, "SELECT max(issued_at) FROM forecast_runs")
    except psycopg.OperationalError:
        return None  # no primary at this moment
    return found


def _rows(url: str) -> int:
    try:
        return int(count(url, "SELECT count(*) FROM readings WHERE kind = 'occupied'"))
    except psycopg.OperationalError:
        return -1


def test_the_primary_killed_under_ingest_loses_and_doubles_nothing(
    patroni: PatroniCluster,
    settings: Settings,
    topics: Topics,
    tmp_path: Path,
    feeds_on: Callable[[Settings], str],
    report: Callable[..., None],
) -> None:
    url = patroni.url
    fill_city(url)  # three days of a lot's counts and a segment's flow, for the forecast job
    register(url, DEVICES)
    settings = with_overrides(
        settings,
        database={"url": url, "connect_timeout_s": 2.0},
        feeds={"rate_per_minute": 1_000_000, "republish_mqtt": False},
    )
    ingest = IngestProcess(settings, "ingest-failover", tmp_path / "ingest.log").start()
    analytics_log = (tmp_path / "analytics.log").open("wb")
    analytics = subprocess.Popen(
        streetsense("analytics", "run", "--interval", "5"),
        env={**job_environment(url), "STREETSENSE_DATABASE_CONNECT_TIMEOUT_S": "2"},
        cwd=tmp_path, stdout=analytics_log, stderr=analytics_log,
    )  # fmt: skip
    sent: list[int] = []
    try:
        assert ingest.wait_ready(30), "ingest did not subscribe"
        feeds = feeds_on(settings)
        assert wait_until(lambda: _forecast_issued(feeds) is not None, 120), "no forecast served"
        # 200 rounds of one pack per device, 0.1 s apart: about 20 s of traffic
        publisher = threading.Thread(
            target=lambda: sent.append(
                stream(settings.mqtt.url, topics, DEVICES, PER_DEVICE, pack=10,
                       pause_every=1, pause_s=0.1)
            ),
            name="publisher",
        )  # fmt: skip
        publisher.start()
        assert wait_until(lambda: _rows(url) >= KILL_AFTER_ROWS, 60), "ingest stored nothing"
        old = patroni.primary()
        assert old is not None
        stored_before = _rows(url)
        old.kill()
        killed_at = datetime.now(UTC)
        started = time.monotonic()
        patroni.wait_for(lambda: patroni.primary() not in (None, old), "new primary", 60)
        promoted_s = time.monotonic() - started
        publisher.join(120)
        assert sent, "the publisher did not finish"
        assert wait_until(lambda: _rows(url) >= sent[0], 120), "ingest did not catch up"
        caught_up_s = time.monotonic() - started
        # the job's next round and the feeds' next refresh went to the new primary
        assert wait_until(lambda: (_latest_run(url) or killed_at) > killed_at, 180)
        fresh = _latest_run(url)
        assert fresh is not None
        assert wait_until(lambda: (_forecast_issued(feeds) or "") >= fresh.isoformat()[:19], 60), (
            "the feeds did not serve the forecast made after the failover"
        )
        recovered_s = time.monotonic() - started
        assert ingest.alive() and analytics.poll() is None, "a service died with the database"
    finally:
        ingest.terminate() if ingest.alive() else None
        analytics.terminate()
        analytics.wait(30)
        analytics_log.close()
    with psycopg.connect(url) as conn:
        found = conn.execute(
            "SELECT count(*), count(DISTINCT (device_id, seq)) FROM readings"
            " WHERE kind = 'occupied'"
        ).fetchone()
    assert found is not None
    rows, distinct = int(found[0]), int(found[1])
    failed_commits = (tmp_path / "ingest.log").read_text().count("failed (")
    report("database_failover", sent=sent[0], stored=rows, lost=sent[0] - distinct,
           duplicated=rows - distinct, stored_before_kill=stored_before,
           promoted_s=round(promoted_s, 1), caught_up_s=round(caught_up_s, 1),
           analytics_and_feeds_s=round(recovered_s, 1), failed_commits=failed_commits)  # fmt: skip
    assert 0 < stored_before < sent[0], "the kill was not mid-stream"
    assert (rows, distinct) == (sent[0], sent[0])
    assert failed_commits > 0, "ingest never noticed the failover"
