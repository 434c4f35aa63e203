"""Load generation: many sensors from one process at a set message rate, for benchmarks."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from simulators.mqtt import PacedPublisher, PublishStoppedError
from streetsense.lifecycle import StopSignal
from streetsense.readings import Reading, encode_readings
from streetsense.topics import Channel, Topics

log = logging.getLogger(__name__)
LOG_EVERY_S = 5.0


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """How much to send: `sensors` spot sensors, `rate` messages per second, `messages` in all."""

    sensors: int = 100_000
    rate: float = 5_000.0
    messages: int = 100_000
    site: str = "load"
    sensors_per_gateway: int = 1  # >1: gateways send packs of that many spots


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What a load run achieved."""

    messages: int
    readings: int
    seconds: float

    @property
    def rate(self) -> float:
        """Achieved messages per second, counted until the broker acknowledged the last one."""
        return self.messages / self.seconds if self.seconds > 0 else 0.0


def device_id(index: int) -> str:
    """Return the id of load device `index`."""
    return f"load-{index:06d}"


def run_load(
    spec: LoadSpec, topics: Topics, publisher: PacedPublisher, stop: StopSignal | None = None
) -> LoadResult:
    """Publish `spec.messages` packs round-robin over the devices at `spec.rate` per second.

    Each device numbers its readings from 1 and toggles its spots, so every message is a valid
    SenML pack a real ingest accepts (once the load devices are registered or auto-registered).
    """
    stop = stop or StopSignal()
    per_gateway = max(1, spec.sensors_per_gateway)
    devices = max(1, spec.sensors // per_gateway)
    topics_of = [topics.device(spec.site, device_id(i), Channel.PARKING) for i in range(devices)]
    started = time.monotonic()
    last_log = started
    readings = 0
    sent = 0
    for sent in range(spec.messages):
        due = started + sent / spec.rate
        delay = due - time.monotonic()
        if delay > 0 and stop.wait(delay):
            break
        device = sent % devices
        round_number = sent // devices
        payload = encode_readings(_pack(device, round_number, per_gateway))
        try:
            publisher.publish(topics_of[device], payload)
        except PublishStoppedError:
            break
        readings += per_gateway
        if time.monotonic() - last_log > LOG_EVERY_S:
            last_log = time.monotonic()
            log.info("%d messages, %.0f/s", sent + 1, (sent + 1) / (last_log - started))
    else:
        sent = spec.messages
    publisher.flush()
    return LoadResult(sent, readings, time.monotonic() - started)


def _pack(device: int, round_number: int, per_gateway: int) -> list[Reading]:
    moment = datetime.now(UTC)
    occupied = float(round_number % 2 == 0)
    first_seq = round_number * per_gateway + 1
    name = device_id(device)
    if per_gateway == 1:
        return [Reading(name, "occupied", moment, occupied, seq=first_seq)]
    return [
        Reading(name, "occupied", moment, occupied, sub_id=f"s{spot:03d}", seq=first_seq + spot)
        for spot in range(per_gateway)
    ]


def registry_tables(
    spec: LoadSpec, centre: tuple[float, float]
) -> dict[str, list[dict[str, object]]]:
    """Return a registry of the load devices, so ingest accepts them without auto-register.

    Devices are grouped 100 to an on-street lot; each device's spots are registered too, so
    occupancy rollups see them.
    """
    per_gateway = max(1, spec.sensors_per_gateway)
    devices = max(1, spec.sensors // per_gateway)
    per_lot = 100
    tables: dict[str, list[dict[str, object]]] = {
        "site": [{"id": spec.site, "name": "Load test"}],
        "lot": [],
        "device": [],
        "spot": [],
    }
    for first in range(0, devices, per_lot):
        lot = f"load-lot-{first // per_lot:05d}"
        members = range(first, min(first + per_lot, devices))
        tables["lot"].append(
            {"id": lot, "site": spec.site, "kind": "on_street", "area": "load",
             "capacity": len(members) * per_gateway, "lat": centre[0], "lon": centre[1]}
        )  # fmt: skip
        for index in members:
            device = device_id(index)
            tables["device"].append(
                {"id": device, "site": spec.site, "kind": "parking", "lot": lot}
            )
            sensors = [None] if per_gateway == 1 else [f"s{n:03d}" for n in range(per_gateway)]
            for sensor in sensors:
                spot: dict[str, object] = {"id": f"{device}-{sensor or 'spot'}", "lot": lot,
                                           "device": device}  # fmt: skip
                if sensor:
                    spot["sensor"] = sensor
                tables["spot"].append(spot)
    return tables
