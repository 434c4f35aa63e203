"""Fault 7 at full size: the readings table locked for 30 s under a 100,000-reading stream.

    .venv/bin/python bench/reliability_locked.py [--lock-s 30] [--per-device 12500]

A real `streetsense ingest` process against a scratch database of the test server and a
private Mosquitto. While an ACCESS EXCLUSIVE lock holds the readings table, ingest must keep
its memory bounded (the broker holds back what exceeds `ingest.receive_maximum`) and lose
nothing. Prints the figures as one Markdown table row.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.ingest import (
    SITE,
    IngestProcess,
    count,
    exactly_once,
    ingest_lag,
    mqtt_client,
    readings,
    register,
    rss_kib,
    wait_log,
    wait_until,
)
from harness.ingest_services import persistent_mosquitto
from harness.scratch import scratch_database
from harness.services import free_port
from streetsense.config import load_settings, with_overrides
from streetsense.readings import encode_readings
from streetsense.topics import Channel, Topics

log = logging.getLogger("bench.reliability_locked")
DEVICES = [f"dev{i}" for i in range(8)]


def publish(url: str, topics: Topics, per_device: int, pack: int) -> int:
    """Publish packs of `pack` readings at QoS 1, each round PUBACKed; return the readings sent.

    Packs keep every device within `ingest.device_burst` messages: a device sending 12,500
    single-reading messages at once is a flood and rate-limited (not confirmed, re-sent later).
    """
    client = mqtt_client(url, inflight=200)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    sent = 0
    try:
        for start in range(1, per_device + 1, 250):
            infos = []
            for device in DEVICES:
                topic = topics.device(SITE, device, Channel.PARKING)
                batch = readings(device, start, min(250, per_device - start + 1), t0)
                for first in range(0, len(batch), pack):
                    payload = encode_readings(batch[first : first + pack])
                    infos.append(client.publish(topic, payload, 1))
                sent += len(batch)
            for info in infos:
                info.wait_for_publish(120)
    finally:
        client.disconnect()
        client.loop_stop()
    return sent


def main() -> int:
    """Lock the table, stream, release; print sent, stored, lost, duplicated, memory, lag."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lock-s", type=float, default=30.0)
    parser.add_argument("--per-device", type=int, default=12_500)
    parser.add_argument("--pack", type=int, default=10, help="readings per message")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    port = free_port()
    topics = Topics(f"bench-{uuid.uuid4().hex[:8]}/streetsense/v1")
    with scratch_database() as url, tempfile.TemporaryDirectory(prefix="ss-lock-") as work:
        broker = persistent_mosquitto(Path(work) / "broker").start()
        settings = with_overrides(
            load_settings(None, environ={}),
            database={"url": url, "timescale": "off"},
            mqtt={"url": broker.url, "topic_prefix": topics.prefix},
            ingest={"metrics_port": port},
        )
        register(url, DEVICES)
        ingest = IngestProcess(settings, "ingest-lock", Path(work) / "ingest.log").start()
        try:
            assert wait_log(ingest.log_path, "subscribed; ingesting", 30)
            assert ingest.process is not None
            rss_before = rss_kib(ingest.process.pid)
            lags: list[float] = []
            rss_peak = rss_before
            with psycopg.connect(url) as locker:
                locker.execute("LOCK TABLE readings IN ACCESS EXCLUSIVE MODE")
                locked_at = time.monotonic()
                sent = publish(broker.url, topics, args.per_device, args.pack)
                while time.monotonic() - locked_at < args.lock_s:
                    lags.append(ingest_lag(port))
                    rss_peak = max(rss_peak, rss_kib(ingest.process.pid))
                    time.sleep(0.5)
                locker.rollback()
            released = time.monotonic()
            assert wait_until(lambda: count(url, "SELECT count(*) FROM readings") >= sent, 600)
            recovery = time.monotonic() - released
            rows, distinct = exactly_once(url)
        finally:
            ingest.terminate()
            broker.stop()
    figures = {
        "sent": sent, "stored": rows, "lost": sent - distinct, "duplicated": rows - distinct,
        "recovery_s": round(recovery, 1), "max_lag_messages": max(lags),
        "rss_growth_mib": round((rss_peak - rss_before) / 1024, 1),
    }  # fmt: skip
    log.info("locked table %.0f s: %s", args.lock_s, figures)
    sys.stdout.write(
        f"| readings table locked {args.lock_s:.0f} s | {sent:,} | {rows:,} | {sent - distinct:,} "
        f"| {rows - distinct:,} | {recovery:.1f} s after release | max lag {max(lags):.0f} "
        f"messages, RSS +{figures['rss_growth_mib']} MiB |\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
