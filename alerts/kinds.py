"""The kinds of alert rule: what each is about, who it is for, and the parameters it takes."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Final


@dataclass(frozen=True, slots=True)
class Param:
    """One numeric parameter of a rule kind: default and the range a valid value lies in."""

    default: float
    minimum: float
    maximum: float
    doc: str


@dataclass(frozen=True, slots=True)
class RuleKind:
    """A condition the evaluator knows how to test."""

    name: str
    subject: str  # lot, segment or device
    audience: str  # planners, field or platform
    doc: str
    params: MappingProxyType[str, Param]


def _kind(name: str, subject: str, audience: str, doc: str, **params: Param) -> RuleKind:
    return RuleKind(name, subject, audience, doc, MappingProxyType(params))


_SHARE = 1.5  # occupancy can read above capacity; that is what `implausible` catches
_ALL: Final = (
    _kind(
        "lot_occupancy",
        "lot",
        "planners",
        "a lot's occupancy at or above a share of capacity",
        above=Param(0.9, 0.0, _SHARE, "fire at this share of capacity"),
        clear_below=Param(-1.0, -1.0, _SHARE, "clear below this share (default: above - 0.05)"),
    ),
    _kind(
        "lot_fill_forecast",
        "lot",
        "planners",
        "a lot confidently forecast to fill: the lower 80% band reaches `above` within the time",
        above=Param(0.95, 0.0, _SHARE, "share of capacity counted as full"),
        within_min=Param(60.0, 5.0, 24 * 60.0, "look this far ahead"),
    ),
    _kind(
        "traffic_incident",
        "segment",
        "planners",
        "speed below its forecast's lower 80% band while less than `queue_flow_share` of "
        "capacity gets through, or flow collapsed with the detectors occupied, judged on a "
        "rolling window of the newest readings as they arrive, for `slow_for_min` minutes of "
        "data",
        window_min=Param(5.0, 1.0, 60.0, "judge each reading on this many minutes of data"),
        slow_for_min=Param(6.0, 1.0, 120.0, "fire once the windows were slow this long"),
        below_band_kmh=Param(3.0, 0.0, 100.0, "how far below the band's lower edge counts"),
        below_forecast_share=Param(0.8, 0.0, 1.0, "and below this share of the forecast"),
        min_vehicles=Param(10.0, 0.0, 1e6, "vehicles a window needs for its speed to count"),
        severe_share=Param(0.0, 0.0, 1.0, "under this share of the forecast one window fires"),
        shift_intervals=Param(
            3.0, 0.0, 6.0, "the band's lowest within this many 5-minute forecast steps counts"
        ),
        history_weeks=Param(4.0, 0.0, 8.0, "a slowdown seen in two of these past weeks is usual"),
        collapse_flow_share=Param(0.3, 0.0, 1.0, "flow below this share of the road's capacity"),
        collapse_occupancy=Param(35.0, 0.0, 100.0, "with detector occupancy above this (%)"),
        queue_flow_share=Param(
            0.6, 0.0, 10.0, "a slow speed counts only with flow below this share of capacity"
        ),
    ),
    _kind(
        "stale_data",
        "lot",
        "planners",
        "a lot or segment whose newest data is older than this",
        after_min=Param(30.0, 1.0, 7 * 24 * 60.0, "minutes without data"),
    ),
    _kind(
        "device_offline",
        "device",
        "field",
        "no message from a device past its expected period, or its Last Will seen",
        after_min=Param(15.0, 1.0, 7 * 24 * 60.0, "minutes of silence"),
    ),
    _kind(
        "battery_low",
        "device",
        "field",
        "battery voltage below a threshold",
        below_v=Param(3.3, 0.0, 60.0, "fire below this voltage"),
        clear_above_v=Param(-1.0, -1.0, 60.0, "clear above this (default: below_v + 0.1)"),
    ),
    _kind(
        "buffer_growing",
        "device",
        "field",
        "readings waiting in the edge buffer above a count",
        above=Param(1000.0, 0.0, 1e12, "fire above this many unsent readings"),
    ),
    _kind(
        "buffer_dropping",
        "device",
        "field",
        "the edge buffer dropped readings at its cap",
        above=Param(0.0, 0.0, 1e12, "fire when more than this many were dropped"),
    ),
    _kind(
        "clock_suspect",
        "device",
        "field",
        "readings flagged with a suspect clock recently",
        window_min=Param(60.0, 5.0, 7 * 24 * 60.0, "look back this far"),
        at_least=Param(1.0, 1.0, 1e9, "flagged readings needed"),
    ),
    _kind(
        "stuck_sensor",
        "device",
        "field",
        "a sensor reporting one value through hours in which the rest of its lot changed",
        hours=Param(6.0, 1.0, 7 * 24.0, "hours without change"),
        min_readings=Param(3.0, 1.0, 1e6, "readings needed to call it stuck"),
        lot_changed=Param(3.0, 1.0, 1e6, "other sensors of its lot that changed meanwhile"),
    ),
    _kind(
        "implausible",
        "lot",
        "field",
        "occupied above capacity, or a segment counting far more than its road can carry",
        capacity_factor=Param(1.05, 1.0, 100.0, "occupied above capacity times this"),
        flow_factor=Param(2.0, 1.0, 100.0, "flow above capacity times this"),
    ),
)

KINDS: Final[MappingProxyType[str, RuleKind]] = MappingProxyType({k.name: k for k in _ALL})
SEVERITIES: Final = ("info", "warning", "critical")
AUDIENCES: Final = ("planners", "field", "platform")
