"""Sensor drivers: sources of raw sensor events behind one small Protocol.

A driver yields `SensorEvent`s stamped with device time; the agent turns them into readings
(debounce for parking presence, interval counts for vehicles, pass-through for everything else).
To plug in a new source (e.g. a richer simulator), implement `SensorDriver`:

    class MyDriver:
        def poll(self, timeout: float) -> list[SensorEvent]: ...
        def now(self) -> float: ...
        def close(self) -> None: ...
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

if TYPE_CHECKING:
    from edge.config import DriverSection

PRESENCE: Final = "presence"  # raw spot detection, value 1 (car seen) or 0; debounced to `occupied`
VEHICLE: Final = (
    "vehicle"  # one vehicle passing, value = speed km/h, duration = s over the detector
)


@dataclass(frozen=True, slots=True)
class SensorEvent:
    """One raw observation, in device time.

    `name` is `presence`, `vehicle` or any reading kind of the contract (`lamp_power`,
    `battery`, `occupied_spaces`, ...), which passes through unchanged; `sub_id` is the spot
    or lane id of a gateway's sensor.
    """

    at: float  # epoch seconds on the device clock
    name: str
    value: float
    sub_id: str | None = None
    duration: float = 0.0


@runtime_checkable
class SensorDriver(Protocol):
    """A source of raw sensor events."""

    def poll(self, timeout: float) -> list[SensorEvent]:
        """Return the events that arrived within `timeout` seconds (an empty list if none)."""
        ...

    def now(self) -> float:
        """Return the device time in epoch seconds (a replay's or simulation's virtual clock)."""
        ...

    def close(self) -> None:
        """Release the source (process, port, file)."""
        ...


def make_driver(section: DriverSection) -> SensorDriver:
    """Build the driver a config section names."""
    if section.kind == "simulated":
        from edge.drivers.simulated import SimulatedDriver  # noqa: PLC0415

        return SimulatedDriver(section)
    if section.kind == "replay":
        from edge.drivers.replay import ReplayDriver  # noqa: PLC0415

        return ReplayDriver(section.path, speed=section.speed, retime=section.retime)
    if section.kind == "serial-line":
        from edge.drivers.stream import open_serial_line  # noqa: PLC0415

        return open_serial_line(section.path, section.baud)
    from edge.drivers.stream import CommandDriver  # noqa: PLC0415

    return CommandDriver(section.command)
