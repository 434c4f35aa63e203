"""A lot's occupancy history from the rollups, with the request checked for sane ranges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

import psycopg

from feeds.formats import iso
from feeds.http import Problem
from feeds.model import LotView
from feeds.runtime import Runtime
from store.feeds_reads import lot_history

# Longest range per resolution: about 2,000 points, enough for a chart, small for a phone.
MAX_RANGE: Final = {
    "5m": timedelta(days=7),
    "1h": timedelta(days=92),
    "1d": timedelta(days=3660),
}
DEFAULT_RANGE: Final = timedelta(hours=24)
EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)


def _bad(detail: str, parameter: str) -> Problem:
    return Problem(400, "Bad time range", detail, "bad-range", parameter=parameter)


def check_range(
    start: datetime | None, end: datetime | None, resolution: str | None, now: datetime
) -> tuple[datetime, datetime, str]:
    """Fill defaults and refuse ranges that are reversed, naive, absurd or too long."""
    latest = now + timedelta(days=1)
    end = now if end is None else _bounded(end, "to", latest)
    start = end - DEFAULT_RANGE if start is None else _bounded(start, "from", latest)
    if start >= end:
        raise _bad(f"from ({iso(start)}) must be before to ({iso(end)})", "from")
    if resolution is None:
        # The finest that fits; a range too long even for days is refused just below.
        resolution = next((r for r, span in MAX_RANGE.items() if end - start <= span), "1d")
    if end - start > MAX_RANGE[resolution]:
        days = MAX_RANGE[resolution].days
        raise _bad(
            f"at resolution {resolution} the range may span at most {days} days; shorten it "
            "or ask for a coarser resolution (5m, 1h, 1d)",
            "resolution",
        )
    return start, end, resolution


def _bounded(moment: datetime, name: str, latest: datetime) -> datetime:
    """Return a bound in UTC; refuse it when naive or outside [EARLIEST, latest]."""
    if moment.tzinfo is None:
        raise _bad(f"{name} needs a time zone, e.g. 2026-11-23T08:00:00Z", name)
    try:
        utc: datetime | None = moment.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 pushed off the calendar by its offset
        utc = None
    if utc is None or not EARLIEST <= utc <= latest:
        raise _bad(
            f"the range must lie between {iso(EARLIEST)} and tomorrow; got {name}="
            f"{moment.isoformat()}",
            name,
        )
    return utc


def history_document(
    runtime: Runtime,
    lot: LotView,
    start: datetime | None,
    end: datetime | None,
    resolution: str | None,
) -> dict[str, Any]:
    """Return the lot's buckets in the range (aggregates only)."""
    start, end, resolution = check_range(start, end, resolution, datetime.now(UTC))
    if runtime.pool is None:
        raise Problem(503, "History unavailable", "no database pool", "unavailable")
    try:
        with runtime.pool.connection() as conn:
            points = lot_history(conn, lot.id, start, end, resolution)
    except psycopg.OperationalError as exc:
        raise Problem(
            503, "History unavailable", "the database is unreachable; retry later", "unavailable"
        ) from exc
    if points is None:
        raise Problem(
            503,
            "History not available yet",
            "the occupancy rollups are not installed on this server yet; retry later",
            "unavailable",
        )
    return {
        "lot": lot.id,
        "capacity": lot.capacity,
        "from": iso(start),
        "to": iso(end),
        "resolution": resolution,
        "points": [
            {
                "bucket": iso(p.bucket),
                "occupied": round(p.occupied, 2),
                "available": max(0.0, round(p.capacity - p.occupied, 2)),
                "occupancy": round(p.occupancy, 4),
                "samples": p.samples,
            }
            for p in points
        ],
    }
