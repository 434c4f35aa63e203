"""Fault injection (issue 8): broker and database crashes, ingest crashes, a locked table.

Each test reports sent, stored, duplicated, lost and recovery time (record_property and the
log) and asserts zero loss and zero duplicates. These are the CI-sized variants; full-size
runs: bench/ingest_faults.py.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from pathlib import Path

import psycopg
import pytest

from harness.ingest import (
    IngestProcess,
    count,
    exactly_once,
    ingest_lag,
    register,
    rss_kib,
    stream,
    wait_log,
    wait_until,
)
from harness.ingest_services import PrivatePostgres, persistent_mosquitto
from harness.services import free_port
from streetsense.config import Settings, with_overrides
from streetsense.topics import Topics
from tests.ingest.agents import ConfirmingPublisher

pytestmark = pytest.mark.faults
log = logging.getLogger(__name__)
DEVICES = [f"dev{i}" for i in range(8)]
# bench/ingest_faults.py runs these full size (100,000 readings, a 30 s lock).
SCALE = float(os.environ.get("STREETSENSE_FAULT_SCALE", "1"))
LOCK_S = float(os.environ.get("STREETSENSE_FAULT_LOCK_S", "6"))


def scaled(count: int) -> int:
    return int(count * SCALE)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The usual settings without the per-device rate limit (the flood test covers that)."""
    return with_overrides(settings, ingest={"device_rate_per_s": 0.0, "metrics_port": 0})


def report(record_property: pytest.RecordProperty, name: str, **figures: float) -> None:
    for key, value in figures.items():
        record_property(f"{name}_{key}", value)
    log.info("%s: %s", name, ", ".join(f"{k}={v}" for k, v in figures.items()))


def check(url: str, sent: int) -> tuple[int, int, int]:
    rows, distinct = exactly_once(url)
    return rows, rows - distinct, sent - distinct


@pytest.mark.parametrize("ingest_online", [True, False], ids=["ingest-online", "ingest-offline"])
def test_broker_sigkill_loses_nothing_with_end_to_end_acks(
    settings: Settings,
    topics: Topics,
    tmp_path: Path,
    record_property: pytest.RecordProperty,
    ingest_online: bool,
) -> None:
    broker = persistent_mosquitto(tmp_path / "broker").start()
    settings = with_overrides(settings, mqtt={"url": broker.url})
    url = settings.database.url
    register(url, DEVICES)
    ingest = IngestProcess(settings, "ingest-f1", tmp_path / "ingest.log").start()
    assert wait_log(ingest.log_path, "subscribed; ingesting")
    if not ingest_online:
        assert ingest.terminate() == 0  # its session stays; the broker queues for it
    agent = ConfirmingPublisher(broker.url, topics, DEVICES, resend_s=2.0)
    try:
        publishing = threading.Thread(target=agent.publish, args=(scaled(1_000), 0.01))
        publishing.start()
        # mid-stream: a fifth of the readings sent, queued and in-flight messages die with it
        total = scaled(1_000) * len(DEVICES)
        assert wait_until(lambda: agent.sent >= total // 5, 60)
        broker.kill()
        time.sleep(0.5)
        broker.start()
        restarted = time.monotonic()
        publishing.join(120)
        if not ingest_online:
            ingest.start()
        assert wait_until(lambda: agent.unconfirmed() == 0, 90), "readings never confirmed"
        recovery = time.monotonic() - restarted
    finally:
        agent.close()
        if ingest.alive():
            ingest.terminate()
        broker.stop()
    rows, duplicated, lost = check(url, agent.sent)
    name = f"broker_kill_{'online' if ingest_online else 'offline'}"
    report(
        record_property,
        name,
        sent=agent.sent,
        resent=agent.resent,
        stored=rows,
        duplicated=duplicated,
        lost=lost,
        recovery_s=round(recovery, 2),
    )
    assert (rows, duplicated, lost) == (agent.sent, 0, 0)


def test_control_run_deleting_on_broker_ack_can_lose(
    settings: Settings, topics: Topics, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    """The control: forget readings on PUBACK, kill the broker with its queue; report the loss."""
    broker = persistent_mosquitto(tmp_path / "broker").start()
    settings = with_overrides(settings, mqtt={"url": broker.url})
    url = settings.database.url
    register(url, DEVICES)
    ingest = IngestProcess(settings, "ingest-ctl", tmp_path / "ingest.log").start()
    assert wait_log(ingest.log_path, "subscribed; ingesting")
    assert ingest.terminate() == 0
    try:
        sent = stream(broker.url, topics, DEVICES, scaled(500), 10)  # every PUBACK received
        broker.kill()
        broker.start()
        ingest.start()
        wait_until(lambda: count(url, "SELECT count(*) FROM readings") >= sent, 8)
    finally:
        if ingest.alive():
            ingest.terminate()
        broker.stop()
    rows, duplicated, lost = check(url, sent)
    report(
        record_property,
        "control_delete_on_puback",
        sent=sent,
        stored=rows,
        duplicated=duplicated,
        lost=lost,
    )
    assert duplicated == 0
    assert rows + lost == sent  # what is missing is exactly what the broker lost


def test_database_restarts_lose_nothing(
    settings: Settings, topics: Topics, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    server = PrivatePostgres().init()
    try:
        settings = with_overrides(settings, database={"url": server.url})
        register(server.url, DEVICES)
        ingest = IngestProcess(settings, "ingest-f2", tmp_path / "ingest.log").start()
        assert wait_log(ingest.log_path, "subscribed; ingesting")
        sent: list[int] = []
        publishing = threading.Thread(
            target=lambda: sent.append(
                stream(settings.mqtt.url, topics, DEVICES, scaled(1_500), 10, 5, 0.05)
            )
        )
        publishing.start()
        assert wait_until(lambda: count(server.url, "SELECT count(*) FROM readings") > 500)
        server.stop("fast")
        time.sleep(1.0)
        server.start()
        assert wait_until(lambda: count(server.url, "SELECT count(*) FROM readings") > 3_000, 60)
        server.stop("immediate")  # as a crash
        time.sleep(1.0)
        server.start()
        restarted = time.monotonic()
        publishing.join(120)
        assert wait_until(lambda: count(server.url, "SELECT count(*) FROM readings") >= sent[0], 90)
        recovery = time.monotonic() - restarted
        assert ingest.terminate() == 0
        retries = ingest.log_path.read_text().count("retrying in")
        rows, duplicated, lost = check(server.url, sent[0])
    finally:
        server.destroy()
    report(
        record_property,
        "database_restart",
        sent=sent[0],
        stored=rows,
        duplicated=duplicated,
        lost=lost,
        recovery_s=round(recovery, 2),
        retries=retries,
    )
    assert (rows, duplicated, lost) == (sent[0], 0, 0)
    assert retries > 0  # it really saw the database go away


def test_ingest_sigkilled_repeatedly_while_two_share(
    settings: Settings, topics: Topics, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    url = settings.database.url
    register(url, DEVICES)
    pair = [IngestProcess(settings, f"ingest-f3{n}", tmp_path / f"{n}.log").start() for n in "ab"]
    for ingest in pair:
        assert wait_log(ingest.log_path, "subscribed; ingesting")
    sent: list[int] = []
    publishing = threading.Thread(
        target=lambda: sent.append(
            stream(settings.mqtt.url, topics, DEVICES, scaled(2_500), 10, 5, 0.03)
        )
    )
    publishing.start()
    chooser = random.Random(8)
    kills = 0
    while publishing.is_alive() and kills < scaled(8):
        time.sleep(0.4)
        victim = chooser.choice(pair)
        victim.kill()  # mid-batch, as likely as not
        kills += 1
        victim.start()
    publishing.join(120)
    started = time.monotonic()
    assert wait_until(lambda: count(url, "SELECT count(*) FROM readings") >= sent[0], 90)
    recovery = time.monotonic() - started
    for ingest in pair:
        assert ingest.wait_ready()  # one restarted last may not handle SIGTERM yet
        assert ingest.terminate() == 0
    rows, duplicated, lost = check(url, sent[0])
    report(
        record_property,
        "ingest_kills",
        sent=sent[0],
        stored=rows,
        duplicated=duplicated,
        lost=lost,
        kills=kills,
        recovery_s=round(recovery, 2),
    )
    assert kills >= 3
    assert (rows, duplicated, lost) == (sent[0], 0, 0)


@pytest.mark.parametrize("warm", [False, True], ids=["fresh-session", "after-acks-flowed"])
def test_locked_readings_table_back_pressures_without_loss(
    settings: Settings,
    topics: Topics,
    tmp_path: Path,
    record_property: pytest.RecordProperty,
    warm: bool,
) -> None:
    port = free_port()
    receive_maximum = 400
    settings = with_overrides(
        settings, ingest={"metrics_port": port, "receive_maximum": receive_maximum}
    )
    url = settings.database.url
    register(url, [*DEVICES, "warm0"])
    ingest = IngestProcess(settings, "ingest-f7", tmp_path / "ingest.log").start()
    assert wait_log(ingest.log_path, "subscribed; ingesting")
    assert ingest.process is not None
    warmed = 0
    if warm:
        # Mosquitto 2.0.11 keeps a client's receive maximum only until its first PUBACK, then
        # sends whatever it has queued: ingest must bound what it holds itself.
        warmed = stream(settings.mqtt.url, topics, ["warm0"], 500, 1)
        assert wait_until(lambda: count(url, "SELECT count(*) FROM readings") >= warmed, 30)
    rss_before = rss_kib(ingest.process.pid)
    lags: list[float] = []
    with psycopg.connect(url) as locker:
        locker.execute("LOCK TABLE readings IN ACCESS EXCLUSIVE MODE")
        sent = stream(settings.mqtt.url, topics, DEVICES, scaled(2_000), 1)  # 16,000 messages
        locked_until = time.monotonic() + LOCK_S
        while time.monotonic() < locked_until:
            lags.append(ingest_lag(port))
            time.sleep(0.2)
        rss_locked = rss_kib(ingest.process.pid)
        stored_while_locked = count(
            url, "SELECT count(*) FROM device_state WHERE device_id <> 'warm0'"
        )
        locker.rollback()
    released = time.monotonic()

    def caught_up() -> bool:
        # The broker sends its queue once acknowledgements flow: what ingest then holds counts.
        lags.append(ingest_lag(port))
        return count(url, "SELECT count(*) FROM readings") >= sent + warmed

    assert wait_until(caught_up, 90)
    recovery = time.monotonic() - released
    assert ingest.terminate() == 0
    rows, duplicated, lost = check(url, sent + warmed)
    report(
        record_property,
        "locked_table",
        sent=sent,
        stored=rows,
        duplicated=duplicated,
        lost=lost,
        recovery_s=round(recovery, 2),
        max_lag_messages=max(lags),
        rss_growth_kib=rss_locked - rss_before,
    )
    assert stored_while_locked == 0  # nothing committed while the lock was held
    assert 0 < max(lags) <= receive_maximum  # the broker held the rest back
    assert rss_locked - rss_before < 64 * 1024  # bounded memory, far below 16,000 messages
    assert (rows, duplicated, lost) == (sent + warmed, 0, 0)


def test_a_database_stall_while_the_broker_floods_loses_nothing(
    settings: Settings, topics: Topics, tmp_path: Path
) -> None:
    """The inbox is full and the network thread waits past the keepalive: the broker drops
    ingest, which reconnects after the stall and stores every reading once."""
    port = free_port()
    receive_maximum = 400
    settings = with_overrides(
        settings,
        ingest={"metrics_port": port, "receive_maximum": receive_maximum},
        mqtt={"keepalive_s": 2},  # the broker gives up on a silent client after 3 s
    )
    url = settings.database.url
    register(url, DEVICES)
    ingest = IngestProcess(settings, "ingest-stall", tmp_path / "ingest.log").start()
    assert wait_log(ingest.log_path, "subscribed; ingesting")
    lags: list[float] = []
    with psycopg.connect(url, autocommit=True) as locker:
        locker.execute("BEGIN")
        locker.execute("LOCK TABLE readings IN ACCESS EXCLUSIVE MODE")
        sent = stream(settings.mqtt.url, topics, DEVICES, scaled(4_000), 1)  # 32,000 messages
        locker.execute("COMMIT")
        # The first commits' PUBACKs set Mosquitto 2.0.11 flooding; stall the database mid-drain.
        assert wait_until(lambda: count(url, "SELECT count(*) FROM readings") > 0, 30)
        locker.execute("BEGIN")
        locker.execute("LOCK TABLE readings IN ACCESS EXCLUSIVE MODE")
        held = locker.execute("SELECT count(*) FROM readings").fetchone()
        stalled_until = time.monotonic() + 8
        while time.monotonic() < stalled_until:
            lags.append(ingest_lag(port))
            time.sleep(0.2)
        locker.execute("COMMIT")

    def caught_up() -> bool:
        lags.append(ingest_lag(port))
        return count(url, "SELECT count(*) FROM readings") >= sent

    assert wait_until(caught_up, 120)
    assert ingest.terminate() == 0
    rows, duplicated, lost = check(url, sent)
    assert held is not None and held[0] < sent  # the stall came mid-drain
    assert max(lags) <= receive_maximum  # ingest held back the flood itself
    assert "disconnected from the broker" in ingest.log_path.read_text()  # and survived a drop
    assert (rows, duplicated, lost) == (sent, 0, 0)
