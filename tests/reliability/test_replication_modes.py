"""Why ingest needs synchronous replication: an acknowledged batch, then the primary dies.

Two Patroni members; the primary's WAL sender is stopped (SIGSTOP: a stalled link) while
ingest commits a second batch, so the primary holds WAL the replica does not. Then the
primary's machine dies (SIGKILL) and the replica is promoted.
- Asynchronous: the commit returned at once, ingest acknowledged the batch to the broker, and
  the promoted replica never had it: the batch is gone, and nothing can send it again.
- Synchronous: the commit waits for the standby, so ingest had acknowledged nothing of the
  batch when the primary died; it commits it again on the new primary. Nothing is lost.
"""

from __future__ import annotations

import contextlib
import os
import signal
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from harness.ingest import IngestProcess, count, register, stream, wait_until
from harness.patroni import HAVE_PATRONI, PatroniCluster
from harness.services import free_port
from streetsense.config import Settings, with_overrides
from streetsense.topics import Topics

pytestmark = [pytest.mark.faults, pytest.mark.cluster]
FIRST = [f"first-{n}" for n in range(4)]
SECOND = [f"second-{n}" for n in range(4)]
PER_DEVICE = 200
PACK = 10


@pytest.fixture(params=[True, False], ids=["synchronous", "asynchronous"])
def patroni(request: pytest.FixtureRequest) -> Iterator[PatroniCluster]:
    """Start two Patroni members in the mode asked; stop and delete them after."""
    if not HAVE_PATRONI:
        pytest.fail("etcd, patroni or PostgreSQL 15 is missing (scripts/setup --tests)")
    cluster = PatroniCluster(synchronous=request.param)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def _acked(port: int) -> float:
    """Return the messages ingest acknowledged to the broker after commit (its metrics)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("streetsense_ingest_messages_acked_total "):
                return float(line.split()[1])
    return -1.0


def _waiting_for_standby(url: str) -> bool:
    """Tell whether ingest's backend waits for the synchronous standby to confirm a commit."""
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'SyncRep'"
        " AND starts_with(application_name, 'streetsense-ingest')"
    )
    return bool(count(url, query))


def _stored(url: str, devices: list[str]) -> int:
    try:
        query = "SELECT count(*) FROM readings WHERE device_id = ANY(%s)"
        return int(count(url, query, devices))
    except psycopg.OperationalError:
        return -1  # no primary at this moment


def test_only_synchronous_replication_keeps_an_acknowledged_batch_through_failover(
    patroni: PatroniCluster,
    settings: Settings,
    topics: Topics,
    tmp_path: Path,
    report: Callable[..., None],
) -> None:
    url = patroni.url
    register(url, FIRST + SECOND)
    port = free_port()
    settings = with_overrides(settings, database={"url": url, "connect_timeout_s": 2.0},
                              ingest={"metrics_port": port})  # fmt: skip
    ingest = IngestProcess(settings, "ingest-modes", tmp_path / "ingest.log").start()
    try:
        assert ingest.wait_ready(30), "ingest did not subscribe"
        first = stream(settings.mqtt.url, topics, FIRST, PER_DEVICE, pack=PACK)
        messages = first // PACK
        assert wait_until(lambda: _acked(port) >= messages, 60), "the first batch was not acked"
        primary = patroni.primary()
        assert primary is not None
        # under load the replica can still be (re)connecting after the mode switch
        assert wait_until(lambda: bool(primary.walsender_pids()), 60), "no replica streams"
        senders = primary.walsender_pids()
        for sender in senders:
            os.kill(sender, signal.SIGSTOP)  # it sends no more WAL (what it sent is there)
        try:
            second = stream(settings.mqtt.url, topics, SECOND, PER_DEVICE, pack=PACK)
            direct = f"postgresql://postgres@{primary.address}/streetsense"
            if patroni.synchronous:
                # the batch's first commit is in the primary's WAL and waits for the standby;
                # ingest acknowledges nothing of it meanwhile
                assert wait_until(lambda: _waiting_for_standby(direct), 60)
            else:
                assert wait_until(lambda: _stored(direct, SECOND) == second, 60)
                assert wait_until(lambda: _acked(port) >= messages + second // PACK, 30)
            acked_at_kill = _acked(port) - messages
            primary.kill()  # SIGKILL ends the stopped senders with it
        finally:
            for sender in senders:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(sender, signal.SIGCONT)
        patroni.wait_for(lambda: patroni.primary() not in (None, primary), "new primary", 60)
        # ingest settles: everything it took is acknowledged, on the new primary or before
        assert wait_until(lambda: _acked(port) >= messages + second // PACK, 90)
        stored = _stored(url, SECOND)
    finally:
        if ingest.alive():
            ingest.terminate()
    mode = "synchronous" if patroni.synchronous else "asynchronous"
    report(f"replication_{mode}", second_batch=second, acked_before_kill=int(acked_at_kill),
           stored_after_failover=stored, lost=second - stored)  # fmt: skip
    assert _stored(url, FIRST) == first
    if patroni.synchronous:
        # none of the batch's messages (ingest's own retained acks of the first batch may
        # still come back and be acknowledged: they write nothing, so they wait for nothing)
        assert acked_at_kill < second // PACK, "a commit returned before the standby had it"
        assert stored == second, "synchronous replication lost a batch"
    else:
        assert acked_at_kill >= second // PACK  # (with ingest's own retained acks)
        assert stored == 0, "the promoted replica had the batch after all (WAL kept flowing?)"
