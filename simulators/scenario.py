"""A bounded stretch of city time with faults injected, ready to deliver in order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from simulators import faults
from simulators.city import City
from simulators.demand import Calendar
from simulators.incidents import Incident
from simulators.packs import Outbound, SequenceBook
from simulators.runner import make_packer
from simulators.world import Cadence, CitySimulation
from streetsense.readings import Reading
from streetsense.registry import LotKind
from streetsense.topics import Channel, Topics

FAULTS: Final = (
    "dropout",
    "stuck",
    "flapping",
    "duplicates",
    "out-of-order",
    "clock-skew",
    "malformed",
    "offline",
    "incident",
)
READING_FAULTS: Final = ("dropout", "stuck", "flapping", "clock-skew")
# A traffic incident keeps this share of the segment's capacity for INCIDENT_S.
INCIDENT_SHARE: Final = 0.25
INCIDENT_S: Final = 40 * 60.0


@dataclass(frozen=True, slots=True)
class FaultOrder:
    """One fault to inject: which, on which device (empty: a sensible default device)."""

    name: str
    device: str = ""


def parse_fault(text: str) -> FaultOrder:
    """Parse `NAME` or `NAME:DEVICE` from the command line."""
    name, _, device = text.partition(":")
    if name not in FAULTS:
        raise ValueError(f"unknown fault {name!r}; choose from {', '.join(FAULTS)}")
    return FaultOrder(name, device)


def default_device(city: City, name: str) -> str:
    """Pick the device a fault hits when none is named: a gateway for spot faults."""
    street = [lot for lot in city.lots if lot.kind is LotKind.ON_STREET]
    garages = [lot for lot in city.lots if lot.kind is LotKind.OFF_STREET]
    if name in ("stuck", "dropout") and garages:
        return garages[0].device_id
    if name == "clock-skew":
        return city.segments[0].counter_id
    if name == "incident":
        return city.segments[0].id  # a segment, not a device
    return street[0].device_id if street else garages[0].device_id


def build(
    city: City,
    calendar: Calendar,
    topics: Topics,
    book: SequenceBook,
    orders: Sequence[FaultOrder],
    *,
    start: float,
    end: float,
    window_s: float = 60.0,
    cadence: Cadence | None = None,
) -> list[Outbound]:
    """Simulate [start, end), inject the faults and return the messages in send order.

    Faults act on the middle third of the stretch, so the clean data around them shows the
    difference; an incident (`incident:SEGMENT`) starts there and lasts up to 40 minutes.
    """
    third = (end - start) / 3
    window = faults.Window(start + third, start + 2 * third)
    resolved = [(o.name, o.device or default_device(city, o.name)) for o in orders]
    incidents = tuple(
        Incident(target, window.start, min(INCIDENT_S, third), INCIDENT_SHARE)
        for name, target in resolved
        if name == "incident"
    )
    readings = CitySimulation(city, calendar, start, cadence, incidents).advance(end)
    for name, device in resolved:
        readings = _reading_fault(name, device, readings, window, city)
    messages = make_packer(city, topics, window_s).pack(readings, book)
    for name, device in resolved:
        messages = _message_fault(name, device, messages, window, topics, city.site)
    return messages


def _reading_fault(
    name: str, device: str, readings: list[Reading], window: faults.Window, city: City
) -> list[Reading]:
    if name == "dropout":
        return faults.dropout(readings, device, window)
    if name == "stuck":
        return faults.stuck(readings, device, window)
    if name == "flapping":
        lot = next(lot for lot in city.lots if lot.device_id == device)
        return faults.flapping(readings, device, lot.sensors[0], window)
    if name == "clock-skew":
        return faults.clock_skew(readings, device, -3_600.0)  # a device still on winter time
    return readings


def _message_fault(
    name: str,
    device: str,
    messages: list[Outbound],
    window: faults.Window,
    topics: Topics,
    site: str,
) -> list[Outbound]:
    if name == "duplicates":
        return faults.duplicate_bursts(messages, device)
    if name == "out-of-order":
        return faults.out_of_order(messages, device, window)
    if name == "malformed":
        topic = topics.device(site, device, Channel.PARKING)
        return faults.malformed(messages, device, topic, every=2)
    if name == "offline":
        status = topics.device(site, device, Channel.STATUS)
        hour = faults.Window(window.start, min(window.end, window.start + 3_600.0))
        return faults.gateway_offline(messages, device, hour, status)
    return messages
