"""Choose a representation from `?format=` or the Accept header."""

from __future__ import annotations

from enum import StrEnum

from starlette.requests import Request

from feeds.http import Problem


class Format(StrEnum):
    """Representations the read endpoints offer."""

    JSON = "json"
    JSONLD = "jsonld"
    GEOJSON = "geojson"
    CSV = "csv"


MEDIA_TYPES = {
    Format.JSON: "application/json",
    Format.JSONLD: "application/ld+json",
    Format.GEOJSON: "application/geo+json",
    Format.CSV: "text/csv; charset=utf-8",
}
_BY_MEDIA = {
    "application/ld+json": Format.JSONLD,
    "application/geo+json": Format.GEOJSON,
    "text/csv": Format.CSV,
    "application/json": Format.JSON,
}


def choose(request: Request, explicit: Format | None, offered: tuple[Format, ...]) -> Format:
    """Return the format asked for; `?format=` wins over Accept; JSON is the default."""
    if explicit is not None:
        if explicit not in offered:
            raise Problem(
                400,
                "Format not offered here",
                f"format={explicit.value} is not offered by this endpoint; use one of "
                f"{[f.value for f in offered]}",
                "bad-parameter",
                parameter="format",
            )
        return explicit
    for part in request.headers.get("accept", "").split(","):
        media = part.split(";")[0].strip().lower()
        found = _BY_MEDIA.get(media)
        if found in offered:
            return found
    return Format.JSON
