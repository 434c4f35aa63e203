"""What request handlers share: settings, the engine, the render cache, the database pool."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from psycopg_pool import ConnectionPool
from starlette.requests import Request

from feeds.engine import FeedEngine
from feeds.http import Problem, RenderCache
from streetsense.config import Settings


@dataclass(slots=True)
class Runtime:
    """Per-process state of the feeds service."""

    settings: Settings
    engine: FeedEngine
    pool: ConnectionPool | None = None
    cache: RenderCache = field(default_factory=RenderCache)
    loop: asyncio.AbstractEventLoop | None = None

    def close_streams_soon(self) -> None:
        """End live streams from any thread or signal handler (on the event loop)."""
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.engine.close_streams)

    @property
    def provider(self) -> str:
        """Name the publisher of the data (agency, else city)."""
        return self.settings.city.agency or self.settings.city.name


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
