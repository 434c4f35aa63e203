"""ASGI middleware: per-client rate limits (429 + Retry-After), security headers, HEAD."""

from __future__ import annotations

import math
import time
from typing import Final

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from feeds.http import INSTANCE_MAX
from streetsense.ratelimit import KeyedBuckets

SECURITY_HEADERS: Final = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-resource-policy", b"cross-origin"),
    (b"strict-transport-security", b"max-age=31536000"),
)
API_CSP: Final = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
# The interactive docs (feeds.docs): scripts from this server only, never inline; Redoc styles
# itself with <style> elements and searches in a worker it builds from a blob.
DOCS_CSP: Final = (
    b"content-security-policy",
    b"default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src blob:; "
    b"frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
)
DOCS_PATHS: Final = ("/docs", "/redoc")
EXEMPT_PATHS: Final = ("/health",)
MAX_CLIENTS: Final = 100_000


class SecurityHeaders:
    """Add security headers to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request through, adding headers on the way out."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(SECURITY_HEADERS)
        extra.append(DOCS_CSP if scope["path"].startswith(DOCS_PATHS) else API_CSP)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RateLimit:
    """A token bucket per client address: `rate_per_minute` sustained, a 10-second burst."""

    def __init__(self, app: ASGIApp, rate_per_minute: int) -> None:
        self.app = app
        self.rate = rate_per_minute / 60.0
        self._buckets = KeyedBuckets(self.rate, max(10.0, self.rate * 10), MAX_CLIENTS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse the request with 429 when its client has spent its tokens."""
        if scope["type"] != "http" or self.rate <= 0 or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        key = client[0] if client else "unknown"
        wait = self._buckets.take(key, time.monotonic())
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        await self._refuse(scope, send, math.ceil(wait))

    async def _refuse(self, scope: Scope, send: Send, retry_after: int) -> None:
        body = orjson.dumps(
            {
                "type": "urn:streetsense:problem:rate-limited",
                "title": "Too many requests",
                "status": 429,
                "detail": f"this client may make {round(self.rate * 60)} requests per minute; "
                f"retry after {retry_after} s",
                "instance": scope["path"][:INSTANCE_MAX],
            }
        )
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"retry-after", str(retry_after).encode()),
                    (b"cache-control", b"no-store"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class HeadAsGet:
    """Answer HEAD like GET without the body (link checkers and caches use it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run HEAD requests as GET and drop the body on the way out."""
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_headers_only)
