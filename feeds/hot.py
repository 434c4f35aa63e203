"""The hot path: repeat GETs answered from the last rendering without routing or validation.

A rendering is remembered under its path, raw query string, Accept header and the snapshot
versions it was built from; the same request against the same snapshot gets the same answer,
so it is sent straight away (with 304 and gzip handled as usual). Everything else, and every
refusal, goes through the full FastAPI stack.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from feeds.runtime import Runtime, answer_key


class HotPath:
    """ASGI middleware serving remembered answers (innermost, after rate limits and CORS)."""

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer from memory when possible, else pass the request on."""
        if scope["type"] == "http" and scope["method"] == "GET":
            request = Request(scope)
            key = answer_key(
                scope["path"],
                scope.get("query_string", b""),
                request.headers,
                self.runtime.engine.snapshot,
            )
            answer = self.runtime.answers.peek(key)
            if answer is not None:
                await answer.response(request)(scope, receive, send)
                return
        await self.app(scope, receive, send)
