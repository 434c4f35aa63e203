"""uvicorn's HTTP/1.1 protocol with the guards it lacks: a deadline for a request's head, a
deadline for a client that stops reading, and caps on connections per address and in total.

uvicorn closes a connection idle between requests (`timeout_keep_alive`) but lets a client
that sends half its headers hold the connection forever (900 such clients at once in issue 14),
and a client that stops reading holds a live stream and its buffers forever. This subclass of
its h11 protocol keeps the parsing and the ASGI cycle as they are and adds timers around them.
It relies on the attributes of uvicorn's H11Protocol (`conn`, `transport`, `client`, `loop`):
pyproject.toml bounds the uvicorn versions it was tested with, and tests/security/
test_feeds_connections.py fails if a guard stops working.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import h11
import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from feeds.limits import Dropped, Slots

RETRY_AFTER_S = 10


@dataclass(frozen=True, slots=True)
class Guards:
    """What the protocol enforces, shared by every connection of one server."""

    connections: Slots
    dropped: Dropped
    header_timeout_s: float
    write_timeout_s: float


def guarded_protocol(guards: Guards) -> type[H11Protocol]:
    """Return uvicorn's h11 protocol class bound to `guards` (pass it as Config(http=...))."""

    class GuardedH11Protocol(H11Protocol):
        def __init__(
            self,
            config: Config,
            server_state: ServerState,
            app_state: dict[str, Any],
            _loop: asyncio.AbstractEventLoop | None = None,
        ) -> None:
            super().__init__(config, server_state, app_state, _loop)
            self._head_timer: asyncio.TimerHandle | None = None
            self._write_timer: asyncio.TimerHandle | None = None
            self._slot: str | None = None
            self._refused = False

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            address = self.client[0] if self.client else ""
            refused = guards.connections.take(address)
            if refused is None:
                self._slot = address
            else:
                # Answered at once, then half-closed: the client reads the answer whenever it
                # sends its request, and the connection ends when it closes (or at the deadline).
                self._refused = True
                detail = guards.connections.describe(refused, "connections")
                answer = _raw_problem(
                    429, "Too Many Requests", "too-many-connections", detail, RETRY_AFTER_S
                )
                transport.write(answer)
                if transport.can_write_eof():
                    transport.write_eof()
            self._head_timer = _later(self.loop, guards.header_timeout_s, self._head_overdue)

        def connection_lost(self, exc: Exception | None) -> None:
            self._head_timer = _cancel(self._head_timer)
            self._write_timer = _cancel(self._write_timer)
            if self._slot is not None:
                guards.connections.give_back(self._slot)
                self._slot = None
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return  # answered already; what it sends is read and dropped
            super().data_received(data)
            if not self._awaiting_head():
                self._head_timer = _cancel(self._head_timer)
            elif self._head_timer is None:
                # Part of a new request's head on a kept-alive connection: its own deadline
                # (a whole head in one read, the usual case, costs no timer).
                self._head_timer = _later(self.loop, guards.header_timeout_s, self._head_overdue)

        def pause_writing(self) -> None:
            super().pause_writing()
            if self._write_timer is None:
                self._write_timer = _later(self.loop, guards.write_timeout_s, self._reader_stuck)

        def resume_writing(self) -> None:
            self._write_timer = _cancel(self._write_timer)
            super().resume_writing()

        def _awaiting_head(self) -> bool:
            return self.conn.their_state is h11.IDLE and self.conn.our_state is h11.IDLE

        def _head_overdue(self) -> None:
            self._head_timer = None
            if self._refused:
                self.transport.abort()
            elif self._awaiting_head() and not self.transport.is_closing():
                guards.dropped.slow_head += 1
                self.transport.write(
                    _raw_problem(
                        408, "Request Timeout", "request-timeout",
                        f"the request's headers did not arrive within {guards.header_timeout_s:g} "
                        "s; send the whole request head at once",
                    )
                )  # fmt: skip
                self.transport.close()

        def _reader_stuck(self) -> None:
            self._write_timer = None
            if not self.transport.is_closing():
                # It reads nothing: a polite close would wait on it too.
                guards.dropped.slow_reader += 1
                self.transport.abort()

    return GuardedH11Protocol


def _later(
    loop: asyncio.AbstractEventLoop, seconds: float, callback: Callable[[], None]
) -> asyncio.TimerHandle | None:
    return loop.call_later(seconds, callback) if seconds > 0 else None


def _cancel(timer: asyncio.TimerHandle | None) -> asyncio.TimerHandle | None:
    """Cancel a timer if set; return None to store in its place."""
    if timer is not None:
        timer.cancel()
    return None


def _raw_problem(
    status: int, reason: str, slug: str, detail: str, retry_after: int | None = None
) -> bytes:
    """Return a whole HTTP/1.1 response carrying an RFC 9457 problem document."""
    body = orjson.dumps(
        {"type": f"urn:streetsense:problem:{slug}", "title": reason, "status": status,
         "detail": detail}
    )  # fmt: skip
    head = [
        f"HTTP/1.1 {status} {reason}",
        "content-type: application/problem+json",
        f"content-length: {len(body)}",
        "cache-control: no-store",
        "connection: close",
    ]
    if retry_after is not None:
        head.append(f"retry-after: {retry_after}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body
