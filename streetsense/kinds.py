"""The reading kinds of the public contract: SenML name, stream, unit and physical range."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Final


class Stream(StrEnum):
    """The data streams a device publishes on (last segment of its topic)."""

    PARKING = "parking"
    TRAFFIC = "traffic"
    LIGHT = "light"
    STATUS = "status"


class ValueType(StrEnum):
    """Which SenML value field a kind uses."""

    NUMBER = "v"
    BOOLEAN = "vb"


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind of reading: its SenML name, stream, canonical unit and physical range."""

    name: str
    stream: Stream
    value_type: ValueType
    unit: str | None
    minimum: float
    maximum: float
    description: str
    # Other units a device may send, with the factor that converts them to the canonical one.
    conversions: MappingProxyType[str, float] = field(default_factory=lambda: MappingProxyType({}))

    def to_canonical(self, value: float, unit: str | None) -> float:
        """Convert a value sent in `unit` to this kind's canonical unit.

        Args:
            value: the number as sent.
            unit: the SenML unit as sent; None means the canonical unit.

        Returns:
            The value in the canonical unit.

        Raises:
            ValueError: the unit is neither the canonical one nor a known conversion.
        """
        if unit is None or unit == self.unit:
            return value
        factor = self.conversions.get(unit)
        if factor is None:
            accepted = [u for u in (self.unit, *self.conversions) if u]
            raise ValueError(
                f"unit '{unit}' is not accepted for '{self.name}'; send one of {accepted}"
            )
        return value * factor


def _kind(
    name: str,
    stream: Stream,
    unit: str | None,
    minimum: float,
    maximum: float,
    description: str,
    *,
    boolean: bool = False,
    conversions: dict[str, float] | None = None,
) -> Kind:
    return Kind(
        name=name,
        stream=stream,
        value_type=ValueType.BOOLEAN if boolean else ValueType.NUMBER,
        unit=unit,
        minimum=minimum,
        maximum=maximum,
        description=description,
        conversions=MappingProxyType(dict(conversions or {})),
    )


_ALL: Final = (
    _kind("occupied", Stream.PARKING, None, 0, 1, "spot occupied (true) or free", boolean=True),
    _kind(
        "occupied_spaces",
        Stream.PARKING,
        "count",
        0,
        100_000,
        "vehicles present in a lot, from its entry/exit counter",
    ),
    _kind("vehicle_count", Stream.TRAFFIC, "count", 0, 100_000, "vehicles in the interval"),
    _kind(
        "mean_speed",
        Stream.TRAFFIC,
        "km/h",
        0,
        300,
        "mean vehicle speed in the interval",
        conversions={"m/s": 3.6},
    ),
    _kind(
        "detector_occupancy",
        Stream.TRAFFIC,
        "%",
        0,
        100,
        "share of the interval a vehicle was over the detector",
        conversions={"/": 100.0},
    ),
    _kind("lamp_power", Stream.LIGHT, "W", 0, 10_000, "lamp electrical power"),
    _kind(
        "lamp_dimming", Stream.LIGHT, "%", 0, 100, "lamp dimming level", conversions={"/": 100.0}
    ),
    _kind("battery", Stream.STATUS, "V", 0, 60, "battery voltage", conversions={"mV": 0.001}),
    _kind("rssi", Stream.STATUS, "dBm", -150, 0, "received signal strength"),
    _kind(
        "online",
        Stream.STATUS,
        None,
        0,
        1,
        "device connected (false from its Last Will)",
        boolean=True,
    ),
    _kind("uptime", Stream.STATUS, "s", 0, 1e10, "seconds since the agent started"),
    _kind("buffer_depth", Stream.STATUS, "count", 0, 1e12, "readings waiting in the edge buffer"),
    _kind("buffer_dropped", Stream.STATUS, "count", 0, 1e12, "readings dropped at the buffer cap"),
    _kind("buffer_oldest_age", Stream.STATUS, "s", 0, 1e10, "age of the oldest unsent reading"),
    _kind("publish_latency", Stream.STATUS, "s", 0, 1e6, "publish-to-confirmation latency"),
    _kind(
        "late_detections",
        Stream.STATUS,
        "count",
        0,
        1e12,
        "vehicle detections that came after their interval was sent; it was sent again revised",
    ),
    _kind(
        "late_dropped",
        Stream.STATUS,
        "count",
        0,
        1e12,
        "vehicle detections too late to revise their interval (traffic.revise_within_s): lost",
    ),
    _kind("acks_refused", Stream.STATUS, "count", 0, 1e12, "confirmations not signed for it"),
    _kind("cpu", Stream.STATUS, "%", 0, 100, "agent CPU use of one core"),
    _kind("memory", Stream.STATUS, "B", 0, 1e13, "agent resident memory"),
    _kind("temperature", Stream.STATUS, "Cel", -60, 150, "device temperature"),
)

KINDS: Final[MappingProxyType[str, Kind]] = MappingProxyType({k.name: k for k in _ALL})


def kind_named(name: str) -> Kind | None:
    """Return the kind with this SenML name, or None when the name is not in the contract."""
    return KINDS.get(name)
