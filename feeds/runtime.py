"""What request handlers share: settings, the engine, the render cache, the database pool."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from psycopg_pool import ConnectionPool
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response

from feeds.engine import FeedEngine, Snapshot
from feeds.http import Cached, LruCache, Problem, Rendered
from streetsense.config import Settings


@dataclass(slots=True)
class Runtime:
    """Per-process state of the feeds service."""

    settings: Settings
    engine: FeedEngine
    pool: ConnectionPool | None = None
    cache: LruCache[Rendered] = field(default_factory=LruCache)
    answers: LruCache[Cached] = field(default_factory=LruCache)
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
    def provider(self) -> str:
        """Name the publisher of the data (agency, else city)."""
        return self.settings.city.agency or self.settings.city.name


def answer_key(path: str, query: bytes, headers: Headers, snapshot: Snapshot) -> tuple[object, ...]:
    """Return what a GET's answer depends on: path, raw query, Accept, Host (absolute links),
    snapshot versions."""
    return (
        path,
        query,
        headers.get("accept"),
        headers.get("host"),
        snapshot.lots_version,
        snapshot.segments_version,
    )


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
