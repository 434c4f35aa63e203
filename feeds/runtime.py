"""What request handlers share: settings, the engine, the render cache, the database pool."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Final

from psycopg_pool import ConnectionPool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response

from feeds.documents import Documents
from feeds.engine import FeedEngine, Snapshot
from feeds.http import Cached, LruCache, Problem, Rendered
from feeds.limits import Dropped, Slots
from feeds.memory import MemoryReturn
from feeds.republish import Republisher
from streetsense.config import Settings

SSE_ENTRIES: Final = 32
HEALTHY_WITHIN_S: Final = 30.0  # a snapshot refreshed longer ago than this is not current


@dataclass(slots=True)
class Runtime:
    """Per-process state of the feeds service."""

    settings: Settings
    engine: FeedEngine
    streams: Slots  # live streams open, per client address and in total
    connections: Slots  # HTTP connections open (feeds.connections enforces it)
    dropped: Dropped = field(default_factory=Dropped)
    memory: MemoryReturn = field(default_factory=MemoryReturn)
    pool: ConnectionPool | None = None
    republisher: Republisher | None = None  # set by the lifespan when republishing to MQTT
    cache: LruCache[Rendered] = field(default_factory=LruCache)
    answers: LruCache[Cached] = field(default_factory=LruCache)
    documents: Documents = field(default_factory=Documents)  # whole-city publications
    # Stream chunks shared by all streams; few, as a big city's snapshot is a megabyte.
    sse: LruCache[bytes] = field(default_factory=lambda: LruCache(SSE_ENTRIES))
    loop: asyncio.AbstractEventLoop | None = None

    def close_streams_soon(self) -> None:
        """End live streams from any thread or signal handler (on the event loop)."""
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.engine.close_streams)

    def remember(self, request: Request, snapshot: Snapshot, answer: Cached) -> Response:
        """Keep a GET's answer for the hot path (see feeds.hot) and send it."""
        query = request.scope.get("query_string", b"")
        key = answer_key(request.url.path, query, request.headers, snapshot)
        self.answers.put(key, answer)
        return answer.response(request)

    @property
    def public_url(self) -> str:
        """Return the feeds' public base URL without a trailing slash ('' for relative links)."""
        return self.settings.feeds.public_url.rstrip("/")

    @property
    def provider(self) -> str:
        """Name the publisher of the data (agency, else city)."""
        return self.settings.city.agency or self.settings.city.name


def answer_key(path: str, query: bytes, headers: Headers, snapshot: Snapshot) -> tuple[object, ...]:
    """Return what a GET's answer depends on: path, raw query, Accept, snapshot versions.

    Not the Host header: no answer depends on it (absolute links come from feeds.public_url),
    so a client varying it can neither poison nor flush the remembered answers.
    """
    return (path, query, headers.get("accept"), snapshot.lots_version, snapshot.segments_version)


def healthy(runtime: Runtime) -> bool:
    """Tell whether the feeds serve current data: first snapshot loaded, refreshed lately."""
    engine = runtime.engine
    last = engine.last_poll_ok
    return engine.ready.is_set() and last is not None and time.monotonic() - last < HEALTHY_WITHIN_S


def runtime_of(request: Request) -> Runtime:
    """Return the runtime of the app serving `request`."""
    found: Runtime = request.app.state.runtime
    return found


def require_ready(request: Request) -> Runtime:
    """Return the runtime once the first snapshot is loaded, else refuse with 503."""
    runtime = runtime_of(request)
    if not runtime.engine.ready.is_set():
        raise Problem(
            503,
            "Feeds are starting",
            "the first snapshot of the city is still being read from the database; retry shortly",
            "starting",
            retry_after_s=2,
        )
    return runtime
