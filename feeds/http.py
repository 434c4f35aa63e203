"""HTTP plumbing: cached renderings with ETag, 304 revalidation, gzip, RFC 9457 problems."""

from __future__ import annotations

import gzip
import hashlib
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any, Final, Generic, TypeVar

import orjson
from starlette.requests import Request
from starlette.responses import Response

PROBLEM_MEDIA_TYPE: Final = "application/problem+json"
GZIP_MIN_BYTES: Final = 1024
CACHE_ENTRIES: Final = 512
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class Rendered:
    """A response body rendered once, with its validator and a compressed copy."""

    body: bytes
    gzipped: bytes | None
    etag: str
    media_type: str


def render(body: bytes, media_type: str) -> Rendered:
    """Render a body: weak ETag from its digest, gzip when it is worth it."""
    digest = hashlib.blake2b(body, digest_size=12).hexdigest()
    packed = gzip.compress(body, compresslevel=5, mtime=0) if len(body) >= GZIP_MIN_BYTES else None
    return Rendered(body, packed, f'W/"{digest}"', media_type)


def render_json(document: Any, media_type: str = "application/json") -> Rendered:
    """Render a JSON document."""
    return render(orjson.dumps(document), media_type)


class LruCache(Generic[V]):
    """A bounded LRU; keys include snapshot versions, so entries never go stale."""

    def __init__(self, size: int = CACHE_ENTRIES) -> None:
        self._entries: OrderedDict[Hashable, V] = OrderedDict()
        self._size = size

    def peek(self, key: Hashable) -> V | None:
        """Return the entry of `key`, or None."""
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
        return found

    def put(self, key: Hashable, value: V) -> V:
        """Store an entry, evicting the least recently used beyond the size."""
        self._entries[key] = value
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)
        return value

    def get(self, key: Hashable, build: Callable[[], V]) -> V:
        """Return the entry of `key`, building and storing it on a miss."""
        found = self.peek(key)
        return found if found is not None else self.put(key, build())


@dataclass(frozen=True, slots=True)
class Cached:
    """A finished answer to a GET: the rendering and its caching headers."""

    rendered: Rendered
    max_age: int
    last_modified: datetime | None

    def response(self, request: Request) -> Response:
        """Answer `request` (304, gzip) from this entry."""
        return respond(
            request, self.rendered, max_age=self.max_age, last_modified=self.last_modified
        )


def accepts_gzip(request: Request) -> bool:
    """Tell whether the client accepts gzip (and did not refuse it with q=0)."""
    for part in request.headers.get("accept-encoding", "").split(","):
        token, _, params = part.strip().partition(";")
        if token.strip().lower() in ("gzip", "*"):
            return params.replace(" ", "").lower() not in ("q=0", "q=0.0", "q=0.00", "q=0.000")
    return False


def _etag_matches(header: str, etag: str) -> bool:
    if header.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in header.split(","))


def _not_modified(request: Request, etag: str, last_modified: datetime | None) -> bool:
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        return _etag_matches(if_none_match, etag)
    since = request.headers.get("if-modified-since")
    if since is None or last_modified is None:
        return False
    try:
        moment = parsedate_to_datetime(since)
    except (TypeError, ValueError, IndexError):
        return False
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return last_modified <= moment


def respond(
    request: Request,
    rendered: Rendered,
    *,
    max_age: int,
    last_modified: datetime | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Answer with a rendering: 304 when the client's copy is current, gzip when accepted."""
    out = {
        "ETag": rendered.etag,
        "Cache-Control": f"public, max-age={max_age}, stale-while-revalidate={max_age}",
        "Vary": "Accept, Accept-Encoding",
    }
    if last_modified is not None:
        out["Last-Modified"] = format_datetime(last_modified.astimezone(UTC), usegmt=True)
    if headers:
        out.update(headers)
    if _not_modified(request, rendered.etag, last_modified):
        return Response(status_code=304, headers=out)
    body = rendered.body
    if rendered.gzipped is not None and accepts_gzip(request):
        body = rendered.gzipped
        out["Content-Encoding"] = "gzip"
    return Response(body, media_type=rendered.media_type, headers=out)


class Problem(Exception):  # noqa: N818  (RFC 9457 calls it a problem)
    """A request the API refuses; rendered as an RFC 9457 problem document."""

    def __init__(self, status: int, title: str, detail: str, slug: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail, self.slug, self.extra = (
            status, title, detail, slug, extra
        )  # fmt: skip


INSTANCE_MAX: Final = 200


def problem_response(
    request: Request,
    problem: Problem,
    headers: dict[str, str] | None = None,
) -> Response:
    """Render a problem document (RFC 9457) for `request`."""
    document = {
        "type": f"urn:streetsense:problem:{problem.slug}",
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        # a client's path, cut short: an oversized one is not sent back whole
        "instance": request.url.path[:INSTANCE_MAX],
        **problem.extra,
    }
    return Response(
        orjson.dumps(document),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers={"Cache-Control": "no-store", **(headers or {})},
    )
