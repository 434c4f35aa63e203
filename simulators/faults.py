"""Faults on demand: what real sensors, gateways and networks do to a clean stream.

Reading faults change what a device measured (before packing); message faults change what
reaches the broker (after packing). Each returns a new list and leaves its input alone.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

from simulators.packs import Outbound
from streetsense.readings import Reading, datetime_to_epoch, encode_readings, epoch_to_datetime


@dataclass(frozen=True, slots=True)
class Window:
    """A stretch of simulated time, epoch seconds [start, end)."""

    start: float
    end: float

    def holds(self, moment: float) -> bool:
        """Tell whether the moment falls inside."""
        return self.start <= moment < self.end


def _at(reading: Reading) -> float:
    return datetime_to_epoch(reading.observed_at)


def dropout(readings: Sequence[Reading], device: str, window: Window) -> list[Reading]:
    """Lose every reading a device takes in the window (dead battery, sensor unplugged)."""
    return [r for r in readings if r.device_id != device or not window.holds(_at(r))]


def stuck(readings: Sequence[Reading], device: str, window: Window) -> list[Reading]:
    """Repeat the last value before the window for every reading inside it (frozen sensor)."""
    last: dict[tuple[str, str | None], float] = {}
    result = []
    for reading in sorted(readings, key=lambda r: r.observed_at):
        key = (reading.kind, reading.sub_id)
        if reading.device_id == device and window.holds(_at(reading)) and key in last:
            result.append(replace(reading, value=last[key]))
            continue
        if reading.device_id == device:
            last[key] = reading.value
        result.append(reading)
    return result


def flapping(
    readings: Sequence[Reading], device: str, sensor: str, window: Window, period_s: float = 3.0
) -> list[Reading]:
    """Add a spot sensor toggling every `period_s` in the window (a loose magnet, a puddle)."""
    toggles = []
    moment, value = window.start, 1.0
    while moment < window.end:
        at = epoch_to_datetime(round(moment, 3))
        toggles.append(Reading(device, "occupied", at, value, sub_id=sensor))
        moment, value = moment + period_s, 1.0 - value
    return sorted([*readings, *toggles], key=lambda r: r.observed_at)


def clock_skew(readings: Sequence[Reading], device: str, offset_s: float) -> list[Reading]:
    """Stamp a device's readings with a clock `offset_s` off (the device does not know it)."""
    shift = timedelta(seconds=offset_s)
    return [
        replace(r, observed_at=r.observed_at + shift) if r.device_id == device else r
        for r in readings
    ]


def duplicate_bursts(
    messages: Sequence[Outbound], device: str, copies: int = 3, every: int = 5
) -> list[Outbound]:
    """Send every `every`-th message of a device `copies` extra times (a retrying modem)."""
    result: list[Outbound] = []
    seen = 0
    for message in messages:
        result.append(message)
        if message.device_id == device:
            if seen % every == 0:
                result += [message] * copies
            seen += 1
    return result


def out_of_order(messages: Sequence[Outbound], device: str, window: Window) -> list[Outbound]:
    """Deliver a device's messages of the window in reverse order (multipath, retries)."""
    inside = [m for m in messages if m.device_id == device and window.holds(m.send_at)]
    times = [m.send_at for m in inside]
    swapped = {id(m): t for m, t in zip(inside, reversed(times), strict=True)}
    result = [replace(m, send_at=swapped.get(id(m), m.send_at)) for m in messages]
    return sorted(result, key=lambda m: m.send_at)


def gateway_offline(
    messages: Sequence[Outbound],
    device: str,
    window: Window,
    status_topic: str,
    drain_s: float = 0.05,
) -> list[Outbound]:
    """Hold a device's messages while it is offline, then drain them in order at reconnection.

    The broker publishes its Last Will (online false) when the link drops; the device
    announces itself online again when it returns, then sends its backlog.
    """
    # What falls due at the very moment of reconnection joins the backlog, behind older data.
    offline = Window(window.start, window.end + 1e-6)
    held = [m for m in messages if m.device_id == device and offline.holds(m.send_at)]
    kept = [m for m in messages if not (m.device_id == device and offline.holds(m.send_at))]
    drained = [
        replace(m, send_at=window.end + (index + 1) * drain_s) for index, m in enumerate(held)
    ]
    went = _online(device, window.start, False, status_topic)
    came = _online(device, window.end, True, status_topic)
    return sorted([*kept, went, came, *drained], key=lambda m: m.send_at)


def _online(device: str, moment: float, online: bool, topic: str) -> Outbound:
    reading = Reading(device, "online", epoch_to_datetime(moment), 1.0 if online else 0.0)
    return Outbound(moment, topic, encode_readings([reading]), device, 1, retain=True)


@dataclass(frozen=True, slots=True)
class Malformed:
    """A broken payload and what ingest must say about it."""

    payload: bytes
    whole_pack_rejected: bool
    problem: str


def malformed_payloads(moment: float) -> list[Malformed]:
    """Return payloads that ingest must reject, each with the problem it carries."""
    record = {"bn": "", "bt": moment}

    def pack(*extra: dict[str, object]) -> bytes:
        return json.dumps([{**record, **extra[0]}, *extra[1:]]).encode()

    return [
        Malformed(b"{not json", True, "not JSON"),
        Malformed(b'{"n": "occupied", "vb": true}', True, "an object, not a pack"),
        Malformed(b"[]", True, "an empty pack"),
        Malformed(b"\xff\xfe\x00garbage", True, "binary garbage"),
        Malformed(pack({"n": "s01/occupied", "v": "yes"}), True, "a string where a number goes"),
        Malformed(pack({"n": "s01/teleported", "vb": True}), False, "an unknown reading name"),
        Malformed(pack({"n": "vehicle_count", "v": 12}), False, "a traffic kind on parking"),
        Malformed(pack({"n": "occupied_spaces", "v": -5}), False, "a negative count"),
        Malformed(pack({"n": "s01/occupied", "v": 1}), False, "a number where vb goes"),
    ]


def malformed(
    messages: Sequence[Outbound], device: str, topic: str, every: int = 10
) -> list[Outbound]:
    """Slip a malformed payload onto a device's topic after every `every`-th of its messages."""
    result: list[Outbound] = []
    seen = 0
    for message in messages:
        result.append(message)
        if message.device_id != device:
            continue
        if seen % every == 0:
            broken = malformed_payloads(message.send_at)
            bad = broken[(seen // every) % len(broken)]
            result.append(Outbound(message.send_at, topic, bad.payload, device, 0))
        seen += 1
    return result
