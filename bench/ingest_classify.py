"""Ingest's hot path alone: classify gateway packs (20 spot readings each) into COPY rows.

CPU time of this process (best of --repeat), so a loaded box disturbs it less than wall time.

Measures readings classified per second by `ingest.classify.Classifier.add`, with every spot
registered, in this process only (no broker, no database). `--counters` classifies gate
counters' packs instead (20 `occupied_spaces` readings each, every counter registered to a lot
of 500 spaces). Run it with another checkout on PYTHONPATH to compare two versions in the same
run on the same box:

    PYTHONPATH=/work/main .venv/bin/python bench/ingest_classify.py
    PYTHONPATH=. .venv/bin/python bench/ingest_classify.py
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime, timedelta

from ingest.batch import Batch
from ingest.classify import Classifier
from ingest.inbox import Message
from streetsense.config import IngestSettings
from streetsense.readings import Reading, encode_readings
from streetsense.topics import Channel, Topics

SITE = "centre"


def messages(devices: int, per_device: int, pack: int, counters: bool = False) -> list[Message]:
    """Return gateway packs: `pack` spot readings each, times one second apart (or a counter's
    `pack` counts, one second apart)."""
    topics = Topics()
    start = datetime.now(UTC) - timedelta(hours=1)
    made = []
    for n in range(per_device):
        for d in range(devices):
            device = f"gw-{d}"
            readings = [
                Reading(device, "occupied", start + timedelta(seconds=n), float((n + s) % 2),
                        f"S{s}", seq=n * pack + s + 1)
                for s in range(pack)
            ] if not counters else [
                Reading(device, "occupied_spaces", start + timedelta(seconds=n * pack + s),
                        float((n + s) % 400), seq=n * pack + s + 1)
                for s in range(pack)
            ]  # fmt: skip
            topic = topics.device(SITE, device, Channel.PARKING)
            made.append(Message(topic, encode_readings(readings), 1, 1, False, time.time(), 1))
    return made


def main() -> None:
    """Print the best of several runs, in readings per second."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--per-device", type=int, default=50)
    parser.add_argument("--pack", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--counters", action="store_true", help="gate counters' packs")
    args = parser.parse_args()
    settings = IngestSettings(device_rate_per_s=0.0)
    known = {f"gw-{d}": SITE for d in range(args.devices)}
    classifier = Classifier(settings, Topics(), known)
    sensors = frozenset(f"S{s}" for s in range(args.pack))
    if hasattr(classifier, "spots"):  # versions that check spot sensors against the registry
        classifier.spots = dict.fromkeys(known, sensors)
    if hasattr(classifier, "capacities"):  # versions that check counts against lot capacities
        from store.registry_changes import LotCapacity

        classifier.capacities = {d: LotCapacity(f"lot-{d}", 500) for d in known}
    batch_messages = messages(args.devices, args.per_device, args.pack, args.counters)
    best = float("inf")
    for _ in range(args.repeat):
        batch = Batch()
        started = time.process_time()
        for message in batch_messages:
            classifier.add(message, batch)
        best = min(best, time.process_time() - started)
        assert len(batch.rows) == len(batch_messages) * args.pack, "not all on the fast path"
    readings = len(batch_messages) * args.pack
    print(json.dumps({"readings": readings, "best_s": round(best, 4),
                      "readings_per_s": round(readings / best)}))  # fmt: skip


if __name__ == "__main__":
    main()
