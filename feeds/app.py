"""The feeds ASGI application: routes, middleware, problem documents, lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from psycopg_pool import ConnectionPool
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from feeds import routes_parking, routes_standards, routes_traffic, stream
from feeds.docs import install_docs
from feeds.engine import FeedEngine
from feeds.guard import HeadAsGet, RateLimit, SecurityHeaders
from feeds.hot import HotPath
from feeds.http import Problem, problem_response
from feeds.limits import Slots
from feeds.republish import Republisher
from feeds.runtime import Runtime, healthy, runtime_of
from streetsense import __version__
from streetsense.config import Settings
from streetsense.errors import ConfigError
from streetsense.hours import check_city

log = logging.getLogger(__name__)
SHUTDOWN_S = 2.0
# The public health answers, rendered once: the check itself reads one clock value.
HEALTH_OK = orjson.dumps({"status": "ok"})
HEALTH_DEGRADED = orjson.dumps({"status": "degraded"})
NO_STORE = {"Cache-Control": "no-store"}
DESCRIPTION = (
    "Open parking and traffic feeds of the city: aggregates only (lot counts, segment flows), "
    "never device identifiers or anything per spot or per vehicle. JSON, NGSI-LD "
    "(Accept: application/ld+json), GeoJSON and CSV; live changes by Server-Sent Events and "
    "retained MQTT topics. Errors are RFC 9457 problem documents."
)


def create_app(settings: Settings) -> FastAPI:
    """Build the feeds application for `settings` (background tasks start with its lifespan).

    Raises:
        ConfigError: city.timezone or city.country cannot evaluate opening hours, or a feeds
            setting is unusable (named, with the fix).
    """
    check_city(settings.city.timezone, settings.city.country)
    check_public_url(settings.feeds.public_url)
    caps = settings.feeds
    runtime = Runtime(
        settings=settings,
        engine=FeedEngine(settings),
        streams=Slots(caps.streams_per_client, caps.streams_max),
        connections=Slots(caps.connections_per_client, caps.connections_max),
    )
    app = FastAPI(
        title=f"{settings.city.name} open parking and traffic feeds",
        version=__version__,
        description=DESCRIPTION,
        lifespan=_lifespan,
        docs_url=None,  # served by feeds.docs from this server, not a CDN
        redoc_url=None,
    )
    app.state.runtime = runtime
    for router in (
        routes_parking.router,
        routes_standards.router,
        stream.router,
        routes_traffic.router,
    ):
        app.include_router(router)
    app.add_api_route("/health", health, methods=["GET"], tags=["service"])
    install_docs(app)
    _install_errors(app)
    _document_problems_not_422(app)
    # Outermost last: CORS must answer preflights before rate limiting counts them, and the
    # hot path sits inside both.
    app.add_middleware(HotPath, runtime=runtime)
    app.add_middleware(RateLimit, rate_per_minute=settings.feeds.rate_per_minute)
    origins = [o.strip() for o in settings.feeds.cors_origins.split(",") if o.strip()]
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "HEAD", "OPTIONS"],
        allow_headers=["Accept", "If-None-Match", "If-Modified-Since", "Last-Event-ID"],
        expose_headers=["ETag", "Last-Modified", "Retry-After"],
        max_age=86_400,
    )
    app.add_middleware(HeadAsGet)
    app.add_middleware(SecurityHeaders)
    return app


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    runtime: Runtime = app.state.runtime
    settings = runtime.settings
    stop = asyncio.Event()
    runtime.loop = asyncio.get_running_loop()
    runtime.pool = ConnectionPool(
        settings.database.url,
        min_size=1,
        max_size=max(1, settings.database.pool_max),
        kwargs={"autocommit": True},
        timeout=5.0,
        open=False,
    )
    runtime.pool.open(wait=False)
    tasks = [
        asyncio.create_task(runtime.engine.run(stop), name="feeds-engine"),
        asyncio.create_task(_freeze_startup_objects(runtime), name="feeds-gc-freeze"),
    ]
    republisher = None
    if settings.feeds.republish_mqtt and settings.mqtt.url:
        republisher = Republisher(settings, runtime.engine)
        tasks.append(asyncio.create_task(republisher.run(stop), name="feeds-mqtt"))
    runtime.republisher = republisher
    try:
        yield
    finally:
        stop.set()
        # Tasks still waiting for a first snapshot (database down) would wait forever.
        _, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_S)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        runtime.pool.close(timeout=SHUTDOWN_S)


async def _freeze_startup_objects(runtime: Runtime) -> None:
    """Move what startup built out of the collector's sight: full collections stay short."""
    await runtime.engine.ready.wait()
    gc.collect()
    gc.freeze()


async def health(request: Request) -> Response:
    """Say whether the feeds serve current data: 200 `ok`, else 503 `degraded`.

    Nothing else, to anyone: why not (the database's error, which names its host and role),
    and the counts behind it, are on the metrics port and in the log (feeds.metrics).
    """
    if healthy(runtime_of(request)):
        return Response(HEALTH_OK, media_type="application/json", headers=NO_STORE)
    return Response(HEALTH_DEGRADED, 503, media_type="application/json", headers=NO_STORE)


def check_public_url(url: str) -> None:
    """Refuse a feeds.public_url that is not an absolute http(s) URL without query or fragment."""
    if not url:
        return
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(
            f"feeds.public_url = {url!r} must be the absolute http(s) URL the feeds are "
            "published at, e.g. https://data.city.example (or empty for relative links)"
        )


def _document_problems_not_422(app: FastAPI) -> None:
    """Drop FastAPI's default 422 from the document: bad parameters get a 400 problem here."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            for operations in schema["paths"].values():
                for operation in operations.values():
                    operation.get("responses", {}).pop("422", None)
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]


def _install_errors(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        retry = exc.extra.get("retry_after_s")
        headers = {"Retry-After": str(retry)} if retry else None
        return problem_response(request, exc, headers)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {
                "parameter": ".".join(str(p) for p in e.get("loc", ())[1:]) or "request",
                "in": str(e.get("loc", ("query",))[0]),
                "problem": str(e.get("msg", "invalid")),
            }
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['parameter']}: {e['problem']}" for e in errors)
        problem = Problem(
            400, "Bad request parameters", f"fix these parameters: {detail}", "bad-parameter",
            errors=errors,
        )  # fmt: skip
        return problem_response(request, problem)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        detail = str(exc.detail)
        if exc.status_code == 404:
            detail = f"no such path {request.url.path[:100]!r}; the API is described at /docs"
        elif exc.status_code == 405:
            detail = "the open feeds are read-only: use GET (or HEAD)"
        problem = Problem(exc.status_code, "Request refused", detail, f"http-{exc.status_code}")
        return problem_response(request, problem, dict(exc.headers or {}))

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
