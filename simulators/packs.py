"""Readings into SenML packs on device topics, with per-device sequence numbers."""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from streetsense.readings import Reading, datetime_to_epoch, encode_readings
from streetsense.topics import Channel, Topics

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Outbound:
    """One message to publish: when (epoch s, simulated time), where, and what."""

    send_at: float
    topic: str
    payload: bytes
    device_id: str
    readings: int
    retain: bool = False
    first_seq: int | None = None


class SequenceBook:
    """The next sequence number of every device, kept in a file across runs.

    Devices number readings strictly increasingly across restarts, so a second run of the
    simulator continues where the first stopped instead of repeating numbers ingest has seen.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.next: dict[str, int] = defaultdict(lambda: 1)
        # The first number of this run per device: the simulator holds nothing below it.
        self.floor: dict[str, int] = {}
        if path is not None and path.is_file():
            self.next.update({k: int(v) for k, v in json.loads(path.read_text()).items()})

    def take(self, device_id: str, count: int) -> int:
        """Reserve `count` numbers for a device; return the first."""
        first = self.next[device_id]
        self.floor.setdefault(device_id, first)
        self.next[device_id] = first + count
        return first

    def rewind(self, unsent: Iterable[Outbound]) -> None:
        """Hand back the numbers of messages never sent, so the next run leaves no gap."""
        for message in unsent:
            if message.first_seq is not None:
                lowest = min(self.next[message.device_id], message.first_seq)
                self.next[message.device_id] = lowest

    def save(self) -> None:
        """Write the book back to its file (atomically), if it has one."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(dict(sorted(self.next.items())), indent=0))
        temporary.replace(self.path)


@dataclass(frozen=True, slots=True)
class Packer:
    """Groups a device's readings per stream and time window into packs of bounded size."""

    topics: Topics
    sites: Mapping[str, str]  # device id -> site
    window_s: float = 60.0
    max_records: int = 500

    def pack(self, readings: Iterable[Reading], book: SequenceBook) -> list[Outbound]:
        """Number readings per device in time order and encode them; sorted by send time."""
        groups: dict[tuple[str, Channel, int], list[Reading]] = defaultdict(list)
        for reading in readings:
            window = math.floor(datetime_to_epoch(reading.observed_at) / self.window_s)
            groups[(reading.device_id, Channel(reading.stream.value), window)].append(reading)
        messages: list[Outbound] = []
        for (device_id, channel, window), group in sorted(groups.items(), key=_group_order):
            group.sort(key=lambda r: r.observed_at)
            first = book.take(device_id, len(group))
            numbered = [replace(r, seq=first + i) for i, r in enumerate(group)]
            topic = self.topics.device(self.sites[device_id], device_id, channel)
            # A device publishes what it gathered when its window closes.
            send_at = (window + 1) * self.window_s
            # Every pack says where this run's numbers start, so ingest never waits for
            # numbers a previous run sent elsewhere (see docs/protocol.md, `seq_floor`).
            floor = book.floor[device_id]
            for start in range(0, len(numbered), self.max_records):
                chunk = numbered[start : start + self.max_records]
                payload = encode_readings(chunk, seq_floor=floor)
                messages.append(
                    Outbound(send_at, topic, payload, device_id, len(chunk), first_seq=chunk[0].seq)
                )
        messages.sort(key=lambda m: m.send_at)
        return messages


def _group_order(item: tuple[tuple[str, Channel, int], list[Reading]]) -> tuple[int, str, str]:
    (device_id, channel, window), _ = item
    return window, device_id, channel.value
