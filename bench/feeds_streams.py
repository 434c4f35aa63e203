"""Live streams and the feeds server's memory: RSS idle, with N streams from one address open,
and after they all closed. Issue 14: 10,000 streams took the server from 191 to 465 MB, and it
kept the memory after they closed.

    PYTHONPATH=. .venv/bin/python bench/feeds_streams.py [--streams 10000] [--capped]

Without --capped the stream and connection caps are lifted (what the old code allowed); with
it the defaults hold and most streams are refused. --server-code DIR runs the server from another
checkout (its packages first on the server's path), with the same client and measurements.
Needs PostgreSQL ($STREETSENSE_TEST_DATABASE_URL); creates and drops a database of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import httpx

from bench.feeds_load import feeds_process, load_city
from harness.scratch import scratch_database
from harness.services import free_port

SETTLE_S = 3.0  # RSS counted as settled once it moved less than 1 MB over this long
REQUEST = b"GET /v1/parking/stream HTTP/1.1\r\nHost: feeds\r\nAccept: text/event-stream\r\n\r\n"


def rss_mb(pid: int) -> float:
    """Resident memory of a process, MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def settled_rss(pid: int, timeout: float = 60.0) -> float:
    """Wait until the RSS stops moving (at most `timeout`), then return it."""
    deadline = time.monotonic() + timeout
    last = rss_mb(pid)
    while time.monotonic() < deadline:
        time.sleep(SETTLE_S)
        now = rss_mb(pid)
        if abs(now - last) < 1.0:
            return now
        last = now
    return last


def all_closed(metrics_port: int, timeout: float = 120.0) -> None:
    """Wait until the server has seen every stream end (servers without metrics: no wait)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
        except httpx.TransportError:
            return  # an older server has no metrics: settled_rss alone decides
        if "streetsense_feeds_streams_open 0.0" in scraped:
            return
        time.sleep(0.5)
    raise TimeoutError("the server still holds streams that the client closed")


async def open_streams(port: int, count: int) -> tuple[list[asyncio.StreamWriter], int]:
    """Open `count` streams (each read up to its first event); return the open ones and how
    many the server refused."""
    writers: list[asyncio.StreamWriter] = []
    refused = 0

    async def one() -> None:
        nonlocal refused
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(REQUEST)
        status = await reader.readline()
        if b" 200 " not in status:
            refused += 1
            writer.close()
            return
        await reader.readuntil(b"event: snapshot")
        writers.append(writer)

    for start in range(0, count, 200):  # 200 at a time: the listen backlog is bounded
        await asyncio.gather(*(one() for _ in range(start, min(count, start + 200))))
    return writers, refused


async def hold_and_close(port: int, count: int, pid: int) -> tuple[int, int, float]:
    """Open the streams, read the server's RSS while all are open, close them from the client
    side; return how many were open, how many refused, and that RSS."""
    writers, refused = await open_streams(port, count)
    peak = rss_mb(pid)
    for writer in writers:
        writer.close()
    await asyncio.gather(*(w.wait_closed() for w in writers), return_exceptions=True)
    return len(writers), refused, peak


def main() -> int:
    """Measure and print one markdown row."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=10_000)
    parser.add_argument("--capped", action="store_true", help="keep the default caps")
    parser.add_argument("--server-code", metavar="DIR", help="serve from this checkout")
    args = parser.parse_args()
    lifted = {
        "STREETSENSE_FEEDS_STREAMS_MAX": "0",
        "STREETSENSE_FEEDS_CONNECTIONS_MAX": "0",
    }
    extra = {} if args.capped else lifted
    if args.capped:  # the per-client caps feeds_load lifts for its one load generator
        extra |= {
            "STREETSENSE_FEEDS_STREAMS_PER_CLIENT": "10",
            "STREETSENSE_FEEDS_CONNECTIONS_PER_CLIENT": "50",
        }
    if args.server_code:
        extra["PYTHONPATH"] = str(Path(args.server_code).resolve())
    metrics = free_port()
    extra["STREETSENSE_FEEDS_METRICS_PORT"] = str(metrics)
    with scratch_database("ss_bench_streams") as url:
        load_city(url, 40, 40)
        with feeds_process(url, None, extra_env=extra) as (base, process):
            port = int(base.rsplit(":", 1)[1])
            idle = settled_rss(process.pid)
            opened, refused, peak = asyncio.run(hold_and_close(port, args.streams, process.pid))
            all_closed(metrics)
            after = settled_rss(process.pid)
    print(
        f"| {args.server_code or 'this checkout'} | "
        f"{'default caps' if args.capped else 'caps lifted'} | {args.streams:,} | "
        f"{opened:,} | {refused:,} | {idle:.0f} | {peak:.0f} | {after:.0f} | "
        f"{(peak - idle):.0f} | {(after - idle):.0f} |"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
