"""Five minutes in which a queue forms on one lane of the test city's segment `ring`.

Shared by the plain PostgreSQL and TimescaleDB tests of the flow rollups' speed: a lane's
minute speeds weighted by their own vehicles, as the incident rule weighs them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from streetsense.readings import Reading

# (vehicles, km/h) per minute: lane l1 queues after two free minutes, lane l2 flows steadily
QUEUE_L1 = ((20.0, 50.0), (18.0, 48.0), (4.0, 20.0), (2.0, 12.0), (2.0, 10.0))
STEADY_L2 = ((15.0, 45.0),) * 5


def queue_forming(start: datetime) -> list[Reading]:
    """Return the loop's two lanes minute by minute from `start` (a 5-minute bucket's start),
    and a radar speed without a count (which has no vehicles to weigh it)."""
    readings = []
    for lane, minutes in (("l1", QUEUE_L1), ("l2", STEADY_L2)):
        for minute, (vehicles, speed) in enumerate(minutes):
            observed = start + timedelta(minutes=minute)
            readings += [
                Reading("loop", "vehicle_count", observed, vehicles, lane),
                Reading("loop", "mean_speed", observed, speed, lane),
                Reading("loop", "detector_occupancy", observed, 100.0 / vehicles, lane),
            ]
    readings.append(Reading("radar", "mean_speed", start + timedelta(minutes=2.5), 90.0))
    return readings


def weighted_speed() -> float:
    """Return the five minutes' speed with every lane-minute weighted by its vehicles."""
    pairs = QUEUE_L1 + STEADY_L2
    return sum(v * s for v, s in pairs) / sum(v for v, _ in pairs)


def unweighted_speed() -> float:
    """Return the speed as the rollups averaged it before: a lane's minute speeds alike,
    lanes weighted by their five minutes' vehicles."""
    lanes = (QUEUE_L1, STEADY_L2)
    means = [(sum(v for v, _ in lane), sum(s for _, s in lane) / len(lane)) for lane in lanes]
    return sum(v * s for v, s in means) / sum(v for v, _ in means)


def vehicles() -> float:
    """Return the five minutes' vehicles on both lanes."""
    return sum(v for v, _ in QUEUE_L1 + STEADY_L2)
