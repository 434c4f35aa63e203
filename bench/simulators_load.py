"""Simulator throughput against a private Mosquitto: load mode and backfill.

    .venv/bin/python bench/simulators_load.py [--messages 100000] [--days 28]

Load mode publishes for 100,000 sensors from one process at a set rate; the baseline in the
same run is the naive publisher most tutorials write (publish, then wait for each PUBACK).
Backfill publishes weeks of the default city's history; the baseline is generating the same
history without publishing it, so the ratio shows what the broker path costs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.services import Mosquitto
from simulators.city import CitySpec, generate_city
from simulators.demand import Calendar
from simulators.load import LoadSpec, device_id, run_load
from simulators.mqtt import PacedPublisher, make_client
from simulators.packs import SequenceBook
from simulators.runner import backfill, make_packer
from simulators.world import CitySimulation
from streetsense.config import Settings, load_settings, with_overrides
from streetsense.readings import Reading, encode_readings
from streetsense.topics import Channel, Topics


def naive(settings: Settings, topics: Topics, messages: int) -> float:
    """Publish one message at a time, waiting for each PUBACK; return messages per second."""
    client, host, port = make_client(settings, "naive")
    client.connect(host, port)
    client.loop_start()
    started = time.monotonic()
    for index in range(messages):
        device = device_id(index % 100_000)
        reading = Reading(
            device, "occupied", datetime.now(UTC), float(index % 2), seq=index // 100_000 + 1
        )
        topic = topics.device("load", device, Channel.PARKING)
        client.publish(topic, encode_readings([reading]), qos=1).wait_for_publish(30)
    elapsed = time.monotonic() - started
    client.disconnect()
    client.loop_stop()
    return messages / elapsed


def load(
    settings: Settings, topics: Topics, messages: int, rate: float, per_gateway: int = 1
) -> tuple[float, float]:
    """Run load mode at `rate`; return the achieved messages and readings per second."""
    spec = LoadSpec(sensors=100_000, rate=rate, messages=messages, sensors_per_gateway=per_gateway)
    with PacedPublisher(settings, window=1_000, role="bench") as publisher:
        result = run_load(spec, topics, publisher)
    return result.rate, result.readings / result.seconds


def history(settings: Settings, topics: Topics, days: float) -> tuple[float, float, int]:
    """Return (seconds generating only, seconds through the broker, readings) for `days`."""
    city = generate_city(CitySpec(seed=1))
    calendar = Calendar(seed=1)
    end = time.time()
    start = end - days * 86_400
    began = time.monotonic()
    simulation = CitySimulation(city, calendar, start)
    packer = make_packer(city, topics, 3_600.0)
    book = SequenceBook()
    readings = 0
    moment = start
    while moment < end:
        chunk = simulation.advance(min(moment + 21_600, end))
        readings += len(chunk)
        packer.pack(chunk, book)
        moment += 21_600
    generate_s = time.monotonic() - began
    with PacedPublisher(settings, window=500, role="bench") as publisher:
        tally = backfill(
            city, calendar, topics, publisher, SequenceBook(), start=start, end=end, progress=False
        )
    return generate_s, tally.seconds, readings


def main() -> int:
    """Run both benchmarks and print a Markdown table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--naive-messages", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=50_000.0)
    parser.add_argument("--days", type=float, default=28.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        broker = Mosquitto(Path(workdir)).start()
        try:
            settings = with_overrides(
                load_settings(None, environ={}),
                mqtt={"url": broker.url, "topic_prefix": "bench/streetsense/v1"},
            )
            topics = Topics("bench/streetsense/v1")
            baseline = naive(settings, topics, args.naive_messages)
            achieved, _ = load(settings, topics, args.messages, args.rate)
            packs, packed_readings = load(settings, topics, args.messages // 10, args.rate, 50)
            generate_s, publish_s, readings = history(settings, topics, args.days)
        finally:
            broker.stop()
    print("| measure | value |")
    print("|---|---|")
    print(f"| naive publisher (wait for each PUBACK) | {baseline:,.0f} msg/s |")
    print(f"| load mode, 100,000 sensors, {args.rate:,.0f}/s asked | {achieved:,.0f} msg/s |")
    print(f"| load mode / naive | {achieved / baseline:.1f}x |")
    packed = f"{packs:,.0f} msg/s, {packed_readings:,.0f} readings/s"
    print(f"| load mode, gateway packs of 50 spots | {packed} |")
    print(f"| backfill {args.days:g} d: readings | {readings:,} |")
    generated, published = readings / generate_s, readings / publish_s
    print(f"| backfill: generate only | {generate_s:.1f} s ({generated:,.0f} readings/s) |")
    print(f"| backfill: through the broker | {publish_s:.1f} s ({published:,.0f} readings/s) |")
    print(f"| backfill: broker path / generation | {publish_s / generate_s:.2f}x the time |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
