"""Drive the simulated city onto the broker: history (backfill), scenarios with faults, live."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass

from tqdm import tqdm

from simulators.city import City
from simulators.demand import Calendar
from simulators.mqtt import PacedPublisher, PublishStoppedError
from simulators.packs import Outbound, Packer, SequenceBook
from simulators.world import Cadence, CitySimulation
from streetsense.backoff import Backoff
from streetsense.errors import ServiceUnavailableError
from streetsense.lifecycle import StopSignal
from streetsense.readings import Reading
from streetsense.topics import Topics

log = logging.getLogger(__name__)
LOG_EVERY_S = 10.0


@dataclass(slots=True)
class Tally:
    """What a run published."""

    messages: int = 0
    readings: int = 0
    first_observed: float = math.inf
    last_observed: float = -math.inf
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        """Messages per second of wall time."""
        return self.messages / self.seconds if self.seconds > 0 else 0.0


def device_sites(city: City) -> dict[str, str]:
    """Return the site of every device of the city."""
    return {device: city.site for device, _ in city.devices()}


def make_packer(city: City, topics: Topics, window_s: float, max_records: int = 500) -> Packer:
    """Return a packer for the city's devices."""
    return Packer(topics, device_sites(city), window_s=window_s, max_records=max_records)


@dataclass(frozen=True, slots=True)
class Pacing:
    """Maps simulated send times to wall time: `speed` simulated seconds per wall second.

    With `real_time_cap`, nothing is sent before its send time is real: a clock that starts in
    the past catches up at `speed` and then runs in real time (ingest refuses the future).
    """

    sim_start: float
    wall_start: float
    speed: float
    real_time_cap: bool = False

    def due(self, send_at: float) -> float:
        """Return the wall time at which a message sent at simulated `send_at` goes out."""
        due = self.wall_start + (send_at - self.sim_start) / self.speed
        return max(due, send_at) if self.real_time_cap else due

    def simulated(self, wall: float) -> float:
        """Return the simulated time at wall time `wall` (the inverse of `due`)."""
        moment = self.sim_start + (wall - self.wall_start) * self.speed
        return min(moment, wall) if self.real_time_cap else moment

    def wait(self, send_at: float, stop: StopSignal) -> bool:
        """Sleep until the message is due; return False when a stop was asked for."""
        delay = self.due(send_at) - time.time()
        return not (delay > 0 and stop.wait(delay))


def deliver(
    messages: Iterable[Outbound],
    publisher: PacedPublisher,
    tally: Tally,
    *,
    pacing: Pacing | None = None,
    stop: StopSignal | None = None,
    on_message: Callable[[Outbound], None] | None = None,
    book: SequenceBook | None = None,
) -> bool:
    """Publish messages in order, at their pace or as fast as acknowledgements allow.

    When stopped early, or when the broker stops acknowledging (ServiceUnavailableError), the
    numbers of the unsent messages go back to `book`.

    Returns:
        False when a stop was asked for before everything was sent.
    """
    stop = stop or StopSignal()
    pending = list(messages)
    for index, message in enumerate(pending):
        if stop.stopping or (pacing is not None and not pacing.wait(message.send_at, stop)):
            if book is not None:
                book.rewind(pending[index:])
            return False
        try:
            publisher.publish(message.topic, message.payload, retain=message.retain)
        except ServiceUnavailableError as exc:
            if book is not None:
                book.rewind(pending[index:])
            if isinstance(exc, PublishStoppedError):
                return False
            raise
        tally.messages += 1
        tally.readings += message.readings
        if on_message is not None:
            on_message(message)
    return True


def observe(tally: Tally, readings: Sequence[Reading]) -> None:
    """Widen the tally's observed-time span to cover the readings."""
    if readings:
        tally.first_observed = min(tally.first_observed, readings[0].observed_at.timestamp())
        tally.last_observed = max(tally.last_observed, readings[-1].observed_at.timestamp())


def backfill(
    city: City,
    calendar: Calendar,
    topics: Topics,
    publisher: PacedPublisher,
    book: SequenceBook,
    *,
    start: float,
    end: float,
    window_s: float = 3_600.0,
    chunk_s: float = 21_600.0,
    cadence: Cadence | None = None,
    progress: bool = True,
    stop: StopSignal | None = None,
    on_message: Callable[[Outbound], None] | None = None,
) -> Tally:
    """Publish the city's history from `start` to `end` (epoch s), paced by acknowledgements.

    Readings keep their past observed times; each device packs an hour of them per message.
    """
    began = time.monotonic()
    start = math.floor(start / window_s) * window_s
    simulation = CitySimulation(city, calendar, start, cadence)
    packer = make_packer(city, topics, window_s)
    tally = Tally()
    bar = tqdm(total=round((end - start) / 3600.0), unit="h", desc="backfill", disable=not progress)
    with bar:
        moment = start
        while moment < end:
            chunk_end = min(moment + chunk_s, end)
            readings = simulation.advance(chunk_end)
            observe(tally, readings)
            messages = packer.pack(readings, book)
            if not deliver(messages, publisher, tally, stop=stop, on_message=on_message, book=book):
                break
            book.save()
            bar.update(round((chunk_end - moment) / 3600.0))
            moment = chunk_end
    publisher.flush()
    tally.seconds = time.monotonic() - began
    return tally


def live(
    city: City,
    calendar: Calendar,
    topics: Topics,
    publisher: PacedPublisher,
    book: SequenceBook,
    stop: StopSignal,
    *,
    duration_s: float | None = None,
    chunk_s: float = 60.0,
    window_s: float = 60.0,
    cadence: Cadence | None = None,
    catch_up_s: float = 0.0,
    speed: float = 1.0,
    exclude: Collection[str] = (),
) -> Tally:
    """Run the city from `catch_up_s` ago until stopped: at `speed` until it reaches the present,
    then in real time, publishing as devices would (never ahead of the real clock).

    Devices in `exclude` are left out (real agents publish for them).
    """
    began = time.monotonic()
    now = time.time()
    simulation = CitySimulation(city, calendar, now - catch_up_s, cadence)
    packer = make_packer(city, topics, window_s)
    pacing = Pacing(sim_start=simulation.now, wall_start=now, speed=speed, real_time_cap=True)
    tally = Tally()
    last_log = time.monotonic()
    moment = simulation.now
    end = math.inf if duration_s is None else pacing.simulated(now + duration_s)
    backoff = Backoff()
    left_out = frozenset(exclude)
    while not stop.stopping and moment < end:
        # bigger steps while catching up, so each one still spans about a wall minute
        step = chunk_s * speed if moment < time.time() else chunk_s
        # ...but no further than a chunk past the real clock: the rest would only wait
        moment = min(moment + step, max(moment, time.time()) + chunk_s, end)
        readings = [r for r in simulation.advance(moment) if r.device_id not in left_out]
        observe(tally, readings)
        packed = packer.pack(readings, book)
        due = [m for m in packed if m.send_at <= end]
        book.rewind(m for m in packed if m.send_at > end)
        try:
            if not deliver(due, publisher, tally, pacing=pacing, stop=stop, book=book):
                break
        except ServiceUnavailableError as exc:
            # The loop's edge: a device without a buffer loses this stretch; keep the city going.
            pause = backoff.next_delay()
            log.warning("%s; dropping this minute of the city, retrying in %.1f s", exc, pause)
            stop.wait(pause)
            continue
        backoff.reset()
        book.save()
        if time.monotonic() - last_log > LOG_EVERY_S:
            log.info("published %d messages, %d readings", tally.messages, tally.readings)
            last_log = time.monotonic()
    publisher.flush()
    tally.seconds = time.monotonic() - began
    return tally
