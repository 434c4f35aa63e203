"""The feed engine: keeps an in-memory snapshot of every lot and segment and emits lot changes.

A fast poll asks which lots the transactions committed since the last one touched, and reads
those lots' counts (so a change reaches stream subscribers well within 2 s); a periodic full
read catches late deliveries and registry changes; trend baselines, flows and forecasts are
refreshed less often. The database adds the sensors up: the engine sees lot counts only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Final, TypeVar

import psycopg

from feeds import sources
from feeds.forecast_view import steady_segment
from feeds.live import LiveParking
from feeds.lot_view import build_lot_view, steady
from feeds.model import LotView, SegmentView
from store.feeds_reads import PublicOverride
from streetsense.backoff import Backoff
from streetsense.config import Settings
from streetsense.errors import ServiceUnavailableError

log = logging.getLogger(__name__)
T = TypeVar("T")
POLL_S: Final = 0.25  # fast poll: change-to-subscriber latency is about this plus a commit
FULL_S: Final = 60.0  # full re-read: late readings, registry changes
CONTEXT_S: Final = 30.0  # trend baselines, flows, forecasts
RECEIVE_OVERLAP: Final = timedelta(seconds=5)  # batches commit after their receive time
HISTORY_EVENTS: Final = 20_000  # change events kept for Last-Event-ID resume
STALE_CHECK_S: Final = 5.0  # re-check every lot's freshness flag this often


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the read endpoints serve, replaced whole on each change."""

    lots_version: int
    lots: tuple[LotView, ...]
    lots_modified: datetime
    segments_version: int
    segments: tuple[SegmentView, ...]
    segments_modified: datetime
    lot_index: dict[str, LotView] = field(default_factory=dict)
    segment_index: dict[str, SegmentView] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """One lot change, numbered for Server-Sent Events resume."""

    id: int
    lot: LotView


Listener = Callable[[list[ChangeEvent]], None]


def _epoch() -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC)


class FeedEngine:
    """Owns the snapshot, the change history and the subscribers; `run()` keeps it current."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        empty = _epoch()
        self.snapshot = Snapshot(0, (), empty, 0, (), empty)
        self.ready = asyncio.Event()
        self.last_poll_ok: float | None = None
        self.last_error: str | None = None  # for the log and metrics, never the public
        self.failures = 0  # refreshes that failed
        # Event ids are the wall clock in microseconds (kept increasing): an id from an earlier
        # process, or from another instance, still means "changes since that moment".
        self._last_id = time.time_ns() // 1000
        self._floor = self._last_id  # changes after this id are all in the history
        self.history: deque[ChangeEvent] = deque(maxlen=HISTORY_EVENTS)
        self._listeners: list[Listener] = []
        self.closing = False
        self._conn: psycopg.Connection | None = None
        self._live: LiveParking | None = None
        self._registry: sources.RegistryData | None = None
        self._context = sources.Context.empty()
        self._watermark: datetime | None = None
        self._next_stale_check = 0.0
        self._seen: dict[str, datetime] = {}  # xmin -> newest receive time, within the overlap
        self._overrides: dict[str, PublicOverride] = {}
        self.registry_loaded_at = empty  # when the registry was last read (ParkAPI static time)
        self.context_refreshes = 0  # reads of trends, flows and forecasts (each rebuilds all)

    @property
    def context(self) -> sources.Context:
        """Return the slow-moving inputs last read (stored forecasts near now among them)."""
        return self._context

    @property
    def last_event_id(self) -> int:
        """Return the id of the newest change event (or the start id when none yet)."""
        return self._last_id

    def add_listener(self, listener: Listener) -> None:
        """Call `listener` with each batch of change events, on the event loop."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        """Stop calling a listener."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def close_streams(self) -> None:
        """Tell every listener the service is stopping (live streams end so shutdown is quick)."""
        self.closing = True
        for listener in list(self._listeners):
            listener([])

    def events_after(self, event_id: int) -> list[ChangeEvent] | None:
        """Return the events after `event_id`, or None when the history cannot tell them all."""
        if not self._floor <= event_id <= self._last_id:
            return None
        return [e for e in self.history if e.id > event_id]

    async def run(self, stop: asyncio.Event) -> None:
        """Keep the snapshot current until `stop` is set; database outages are retried."""
        next_full = next_context = 0.0
        delay = POLL_S
        backoff = Backoff(1.0, 30.0)
        while not stop.is_set():
            now = time.monotonic()
            try:
                if self._live is None or now >= next_full:
                    await self._full()
                    next_full = now + FULL_S
                if now >= next_context:
                    await self._refresh_context()
                    next_context = now + CONTEXT_S
                else:
                    await self._poll()
                self.last_poll_ok, self.last_error, delay = time.monotonic(), None, POLL_S
                backoff.reset()
                self.ready.set()
            except (ServiceUnavailableError, psycopg.Error) as exc:
                self.failures += 1
                self._drop_connection()
                self.last_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                delay = backoff.next_delay()
                log.warning("feed refresh failed (retrying in %.1f s): %s", delay, self.last_error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
        self._drop_connection()

    async def _full(self) -> None:
        registry, live, newest = await asyncio.to_thread(self._call, sources.read_full)
        if registry != self._registry:
            self.registry_loaded_at = datetime.now(UTC).replace(microsecond=0)
        self._registry, self._live = registry, live
        self._overrides = await asyncio.to_thread(self._call, sources.read_overrides)
        if newest is not None and (self._watermark is None or newest > self._watermark):
            self._watermark = newest
        self._publish_lots()
        await self._publish_segments()

    async def _poll(self) -> None:
        assert self._live is not None
        since = None if self._watermark is None else self._watermark - RECEIVE_OVERLAP
        seen = list(self._seen)
        recent = await asyncio.to_thread(self._call, sources.read_recent, since, seen)
        touched: set[str] = set()
        transactions = recent.transactions.transactions
        if transactions:
            touched = self._live.apply(recent.transactions.lots, recent.lots)
            newest = max(transactions.values())
            self._watermark = max(newest, self._watermark or newest)
        self._remember(transactions)
        if time.monotonic() >= self._next_stale_check:
            # Freshness flags and opening hours flip with the clock alone, and an operator's
            # override is a row of its own, so every lot is looked at now and then.
            self._next_stale_check = time.monotonic() + STALE_CHECK_S
            overrides = await asyncio.to_thread(self._call, sources.read_overrides)
            touched |= {
                lot for lot in overrides.keys() | self._overrides.keys()
                if overrides.get(lot) != self._overrides.get(lot)
            }  # fmt: skip
            self._overrides = overrides
            touched |= self._stale_flipped()
        if touched:
            self._publish_lots(touched)

    def _remember(self, transactions: dict[str, datetime]) -> None:
        """Keep the transactions seen within the overlap, so the next poll skips their rows."""
        self._seen.update(transactions)
        if self._watermark is not None:
            horizon = self._watermark - RECEIVE_OVERLAP
            self._seen = {x: at for x, at in self._seen.items() if at > horizon}

    def _stale_flipped(self) -> set[str]:
        """Return the lots whose freshness or opening status the clock changed since built."""
        now = datetime.now(UTC)
        return {
            lot.id
            for lot in self.snapshot.lots
            if lot.stale != self._is_stale(lot.id, lot.observed_at, now)
            or (lot.status_until is not None and now >= lot.status_until)
        }

    def _is_stale(self, lot_id: str, observed: datetime | None, now: datetime) -> bool:
        """Tell whether a lot's count can no longer be trusted.

        Fresh while either a reading or any message from its sensors (heartbeats, spot
        re-sends) is recent: a quiet lot whose occupancy has not changed is still live.
        """
        if observed is None:
            return True
        heard = self._context.lots_heard.get(lot_id)
        newest = observed if heard is None else max(observed, heard)
        return now - newest > timedelta(seconds=self.settings.feeds.stale_after_s)

    async def _refresh_context(self) -> None:
        assert self._registry is not None
        capacities = {lot.lot_id: lot.capacity for lot in self._registry.lots}
        self._context = await asyncio.to_thread(self._call, sources.read_context, capacities)
        self._publish_lots()
        await self._publish_segments()
        self.context_refreshes += 1

    def _call(self, read: Callable[..., T], *args: object) -> T:
        """Run one read on the engine's connection (worker thread), connecting when needed."""
        if self._conn is None or self._conn.closed:
            url = self.settings.database.url
            try:
                # No JIT: compiling the small aggregate reads took longer than running them.
                self._conn = psycopg.connect(
                    url, autocommit=True, connect_timeout=5, options="-c jit=off"
                )
            except psycopg.OperationalError as exc:
                raise ServiceUnavailableError(
                    f"feeds cannot reach the database: {exc}; check database.url"
                ) from exc
        return read(self._conn, *args)

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _publish_lots(self, touched: set[str] | None = None) -> None:
        """Rebuild the lot views (only `touched` ones when given) and emit what changed."""
        assert self._registry is not None and self._live is not None
        now = datetime.now(UTC)
        old = self.snapshot.lot_index
        views = tuple(
            steady(old.get(lot.lot_id), self._lot_view(lot, now), now)
            if touched is None or lot.lot_id in touched or lot.lot_id not in old
            else old[lot.lot_id]
            for lot in self._registry.lots
        )
        changed = [v for v in views if v.id not in old or old[v.id].change_key() != v.change_key()]
        if not changed and (touched is not None or self._same_lots(old, views)):
            return
        self.snapshot = replace(
            self.snapshot,
            lots_version=self.snapshot.lots_version + 1,
            lots=views,
            lots_modified=now.replace(microsecond=0),
            lot_index={v.id: v for v in views},
        )
        self._emit(changed)

    @staticmethod
    def _same_lots(old: dict[str, LotView], views: tuple[LotView, ...]) -> bool:
        """Tell whether a full rebuild changed nothing at all (forecasts included)."""
        return len(old) == len(views) and all(old.get(v.id) == v for v in views)

    def _lot_view(self, lot: sources.LotRow, now: datetime) -> LotView:
        assert self._live is not None
        live = self._live.lot(lot.lot_id)
        observed = None if live is None else live.observed_at
        return build_lot_view(
            lot,
            live,
            now,
            override=self._overrides.get(lot.lot_id),
            stale=self._is_stale(lot.lot_id, observed, now),
            baseline=self._context.baselines.get(lot.lot_id),
            curve=self._context.lot_curves.get(lot.lot_id),
            forecast_reason=self._context.unavailable("occupancy", lot.lot_id),
            city=self.settings.city,
        )

    def _emit(self, changed: list[LotView]) -> None:
        # Listeners hear of every new snapshot, even one that only dropped lots.
        events = []
        for view in changed:
            self._last_id = max(self._last_id + 1, time.time_ns() // 1000)
            events.append(ChangeEvent(self._last_id, view))
        overflow = len(self.history) + len(events) - HISTORY_EVENTS
        if overflow > 0:
            # The deque drops the oldest: changes up to the last dropped one are lost to resume.
            self._floor = [*self.history, *events][overflow - 1].id
        self.history.extend(events)
        for listener in list(self._listeners):
            listener(events)

    async def _publish_segments(self) -> None:
        assert self._registry is not None
        now = datetime.now(UTC)
        # Re-anchoring every segment's flow and speed takes a while in a large city: built in
        # the worker thread, so requests keep being served meanwhile.
        built = await asyncio.to_thread(
            sources.segment_views,
            self._registry.segments,
            self._context,
            now,
            self.settings.feeds.stale_after_s,
        )
        old = self.snapshot.segment_index
        views = tuple(steady_segment(old.get(view.id), view, now) for view in built)
        if views == self.snapshot.segments:
            return
        self.snapshot = replace(
            self.snapshot,
            segments_version=self.snapshot.segments_version + 1,
            segments=views,
            segments_modified=now.replace(microsecond=0),
            segment_index={v.id: v for v in views},
        )
