"""Server-Sent Events of lot changes, with Last-Event-ID resume."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Final

import orjson
from fastapi import APIRouter, Header, Query, Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from feeds import formats
from feeds.engine import ChangeEvent, FeedEngine
from feeds.http import LruCache, Problem
from feeds.runtime import Runtime, require_ready

router = APIRouter(tags=["parking"])
KEEPALIVE_S: Final = 15.0
QUEUE_MAX: Final = 10_000  # a client this far behind is dropped; it resumes by Last-Event-ID
RETRY_MS: Final = 2000
RETRY_AFTER_S: Final = 30  # a refused stream client waits this long (others come and go)
ID_DIGITS: Final = 20  # ids are microseconds since 1970: 16 digits until the year 2286
EVENT_ID: Final = re.compile(f"[0-9]{{1,{ID_DIGITS}}}", re.ASCII)


def lot_event(event: ChangeEvent) -> bytes:
    """Format one change as an SSE `lot` event."""
    data = orjson.dumps(formats.lot_dict(event.lot))
    return b"id: %d\nevent: lot\ndata: %s\n\n" % (event.id, data)


def snapshot_event(engine: FeedEngine, only: frozenset[str] = frozenset()) -> bytes:
    """Format every lot (or `only` these) as one SSE `snapshot` event for a (re)starting client."""
    lots = [formats.lot_dict(lot) for lot in engine.snapshot.lots if not only or lot.id in only]
    data = orjson.dumps({"lots": lots})
    return b"id: %d\nevent: snapshot\ndata: %s\n\n" % (engine.last_event_id, data)


def _parse_id(text: str | None) -> int | None:
    """Return the event id a client resumes from; refuse anything this stream never sent."""
    if text is None:
        return None
    if EVENT_ID.fullmatch(text) is None:
        raise Problem(
            400,
            "Bad Last-Event-ID",
            f"Last-Event-ID must be the id of an event this stream sent (1 to {ID_DIGITS} "
            "digits); reconnect without it to start from a snapshot",
            "bad-parameter",
            parameter="Last-Event-ID",
        )
    return int(text)


async def _events(
    engine: FeedEngine, last_id: int | None, lots: frozenset[str], rendered: LruCache[bytes]
) -> AsyncIterator[bytes]:
    """Yield the stream's chunks. Snapshots and events are rendered once for every stream: each
    stream holds its last chunk until the next one, and a whole city's snapshot per stream was
    most of a stream's memory."""

    def shared_snapshot() -> bytes:
        key = ("snapshot", engine.snapshot.lots_version, engine.last_event_id, lots)
        return rendered.get(key, lambda: snapshot_event(engine, lots))

    def shared(event: ChangeEvent) -> bytes:
        return rendered.get(("lot", event.id), lambda: lot_event(event))

    queue: asyncio.Queue[ChangeEvent | None] = asyncio.Queue(QUEUE_MAX)

    def end() -> None:
        engine.remove_listener(listener)
        with contextlib.suppress(asyncio.QueueEmpty):
            queue.get_nowait()
        queue.put_nowait(None)

    def listener(events: list[ChangeEvent]) -> None:
        if engine.closing:
            end()
            return
        for event in events:
            if lots and event.lot.id not in lots:
                continue
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                end()
                return

    event: ChangeEvent | None
    # Listen first, then look back: an event landing in between is sent once, by id order.
    engine.add_listener(listener)
    try:
        yield b"retry: %d\n\n" % RETRY_MS
        backlog = None if last_id is None else engine.events_after(last_id)
        if backlog is None:
            yield shared_snapshot()
            sent = engine.last_event_id
        else:
            sent = last_id or 0
            for past in backlog:
                if not lots or past.lot.id in lots:
                    yield shared(past)
                sent = past.id
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
            except TimeoutError:
                yield b": keepalive\n\n"
                continue
            if event is None:
                return
            if event.id > sent:
                sent = event.id
                yield shared(event)
    finally:
        engine.remove_listener(listener)


@router.get(
    "/v1/parking/stream",
    summary="Live lot changes (Server-Sent Events)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream(
    request: Request,
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", description="id of the last event received")
    ] = None,
    lot: Annotated[list[str] | None, Query(max_length=500, description="only these lots")] = None,
) -> StreamingResponse:
    """Stream `lot` events as lots change; resume with Last-Event-ID, else start by `snapshot`.

    A client address may hold feeds.streams_per_client streams, the server feeds.streams_max:
    past either, 429 with Retry-After.
    """
    runtime = require_ready(request)
    resume_from = _parse_id(last_event_id)
    client = request.client.host if request.client else ""
    refused = runtime.streams.take(client)
    if refused is not None:
        raise Problem(
            429,
            "Too many live streams",
            runtime.streams.describe(refused, "live streams"),
            "too-many-streams",
            retry_after_s=RETRY_AFTER_S,
        )
    return LiveStream(
        _events(runtime.engine, resume_from, frozenset(lot or ()), runtime.sse),
        release=lambda: _closed(runtime, client),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


class LiveStream(StreamingResponse):
    """A stream that gives its slot back when it ends, however it ends (client gone, error,
    shutdown)."""

    def __init__(self, content: AsyncIterator[bytes], release: Callable[[], None], **kwargs: Any):
        super().__init__(content, **kwargs)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the stream; give the slot back at its end."""
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


def _closed(runtime: Runtime, client: str) -> None:
    runtime.streams.give_back(client)
    runtime.memory.stream_closed(runtime.streams.open)
