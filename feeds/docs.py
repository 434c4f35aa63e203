"""The interactive API documentation (/docs, /redoc), served from this server alone.

FastAPI's own pages load Swagger UI and Redoc from a public CDN, with no integrity check and
no Content-Security-Policy: blank offline, and whatever the CDN serves runs on our origin.
Here the assets come from the `fastapi-offline` package, the start-up script is a file of
ours, and the pages carry a policy that lets scripts come from this server only (guard.DOCS_CSP).
"""

from __future__ import annotations

import functools
import html
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Final

from fastapi import FastAPI, Request
from starlette.responses import HTMLResponse, Response

from feeds.http import Problem, Rendered, render, respond

ASSETS_PATH: Final = "/docs/assets"
MEDIA_TYPES: Final = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
}
ASSET_MAX_AGE: Final = 86_400
# Our start-up script, then the vendored Swagger UI and Redoc builds.
ASSETS: Final[dict[str, Traversable]] = {
    "docs.js": files("feeds").joinpath("static", "docs.js"),
    **{
        name: files("fastapi_offline").joinpath("static", name)
        for name in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")
    },
}
SWAGGER_PAGE: Final = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="icon" href="{assets}/favicon.png"><link rel="stylesheet" href="{assets}/swagger-ui.css">
</head><body><div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script><script src="{assets}/docs.js"></script>
</body></html>
"""
REDOC_PAGE: Final = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="icon" href="{assets}/favicon.png"></head>
<body><redoc spec-url="openapi.json"></redoc>
<script src="{assets}/redoc.standalone.js"></script></body></html>
"""


def install_docs(app: FastAPI) -> None:
    """Serve /docs, /redoc and their assets (create the app with docs_url=redoc_url=None)."""
    title = html.escape(f"{app.title} - API")

    async def swagger(request: Request) -> Response:
        return _page(SWAGGER_PAGE.format(title=title, assets=ASSETS_PATH))

    async def redoc(request: Request) -> Response:
        return _page(REDOC_PAGE.format(title=title, assets=ASSETS_PATH))

    async def asset(request: Request, name: str) -> Response:
        if name not in ASSETS:
            raise Problem(404, "Unknown asset", f"there is no docs asset {name[:64]!r}", "http-404")
        return respond(request, _rendered(name), max_age=ASSET_MAX_AGE)

    app.add_api_route("/docs", swagger, methods=["GET"], include_in_schema=False)
    app.add_api_route("/redoc", redoc, methods=["GET"], include_in_schema=False)
    app.add_api_route(f"{ASSETS_PATH}/{{name}}", asset, methods=["GET"], include_in_schema=False)


@functools.cache
def _rendered(name: str) -> Rendered:
    """Read and compress an asset once (Swagger UI's bundle is 1.5 MB)."""
    return render(ASSETS[name].read_bytes(), MEDIA_TYPES[name[name.rindex(".") :]])


def _page(text: str) -> Response:
    return HTMLResponse(text, headers={"Cache-Control": "no-cache"})
