"""The demo's one-screen summary, read from the public interfaces: feeds API and ingest metrics."""

from __future__ import annotations

import json
import logging
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Final, TextIO

log = logging.getLogger(__name__)
HTTP_TIMEOUT_S: Final = 2.0
# Prometheus text lines of ingest's new-rows counter: `name{labels} value`.
_READINGS_RE: Final = re.compile(
    r"^(\w*readings_written_total)(?:\{[^}]*\})?\s+([0-9.eE+-]+)$", re.M
)
_CLEAR_LINE: Final = "\x1b[2K"
_HORIZON_RE: Final = re.compile(r"_\d+m\Z")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the city looks like right now, as seen from outside."""

    at: float
    readings_total: float | None
    lots: int | None
    lots_with_data: int | None
    lots_with_forecast: int | None


def get_json(url: str) -> Any:
    """GET a JSON document, or None when the service does not answer (yet)."""
    try:
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as response:  # noqa: S310
            return json.load(response)
    except (OSError, ValueError, urllib.error.URLError):
        return None


def readings_total(metrics_url: str) -> float | None:
    """Return ingest's count of readings written (new rows), summed over its labels."""
    try:
        with urllib.request.urlopen(metrics_url, timeout=HTTP_TIMEOUT_S) as response:  # noqa: S310
            text = response.read().decode("utf-8", errors="replace")
    except (OSError, urllib.error.URLError):
        return None
    values = [float(value) for _name, value in _READINGS_RE.findall(text)]
    return sum(values) if values else None


def lots_of(document: Any) -> list[dict[str, Any]]:
    """Return the lot objects of a `/v1/parking/lots` answer (a list or an object holding one)."""
    if isinstance(document, dict):
        for key in ("lots", "items", "data", "value"):
            if isinstance(document.get(key), list):
                document = document[key]
                break
    return [lot for lot in document if isinstance(lot, dict)] if isinstance(document, list) else []


def has_data(lot: dict[str, Any]) -> bool:
    """Tell whether a lot has a live (not stale) availability figure."""
    return lot.get("available") is not None and lot.get("stale") is False


def has_forecast(lot: dict[str, Any]) -> bool:
    """Tell whether a lot carries a forecast value for some horizon (`available_15m`, ...)."""
    forecast = lot.get("forecast")
    if not isinstance(forecast, dict):
        return False
    return any(_HORIZON_RE.search(key) and value is not None for key, value in forecast.items())


def take_snapshot(feeds_url: str, metrics_url: str | None) -> Snapshot:
    """Read the feeds API and ingest metrics once."""
    document = get_json(f"{feeds_url}/v1/parking/lots")
    lots = lots_of(document) if document is not None else None
    return Snapshot(
        at=time.monotonic(),
        readings_total=readings_total(metrics_url) if metrics_url else None,
        lots=len(lots) if lots is not None else None,
        lots_with_data=sum(map(has_data, lots)) if lots is not None else None,
        lots_with_forecast=sum(map(has_forecast, lots)) if lots is not None else None,
    )


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


def summary_lines(
    now: Snapshot, before: Snapshot | None, elapsed_s: float, baseline: float | None
) -> list[str]:
    """Return the summary's lines.

    Args:
        now: the latest snapshot.
        before: an older snapshot the rate is taken from, or None.
        elapsed_s: time since the city went live.
        baseline: readings ingest had written when the city went live (after the backfill).
    """
    rate = "-"
    if before and now.readings_total is not None and before.readings_total is not None:
        span = max(now.at - before.at, 1e-3)
        rate = f"{(now.readings_total - before.readings_total) / span:.1f}"
    live = "-"
    if now.readings_total is not None and baseline is not None:
        live = f"{now.readings_total - baseline:,.0f}"
    return [
        f"live for {elapsed_s:5.0f} s   readings/s {rate:>6}   live readings {live}",
        f"lots {_count(now.lots)}   with live data {_count(now.lots_with_data)}   "
        f"forecasts ready {_count(now.lots_with_forecast)}",
    ]


class SummaryScreen:
    """Redraw the summary in place on a terminal; elsewhere log it now and then."""

    def __init__(self, out: TextIO, log_every_s: float = 10.0) -> None:
        self.out = out
        self.tty = out.isatty()
        self.log_every_s = log_every_s
        self._drawn = 0
        self._logged_at = 0.0

    def show(self, lines: list[str]) -> None:
        """Draw (or log) the summary lines."""
        if self.tty:
            up = f"\x1b[{self._drawn}F" if self._drawn else ""
            self.out.write(up + "".join(f"{_CLEAR_LINE}{line}\n" for line in lines))
            self.out.flush()
            self._drawn = len(lines)
        elif time.monotonic() - self._logged_at >= self.log_every_s:
            self._logged_at = time.monotonic()
            log.info("%s", " | ".join(lines))
