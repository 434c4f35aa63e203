"""`streetsense doctor`: what ingest refused in the last day, and how full quarantine is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

import psycopg

from ingest.doctor import OK, WARN, Check
from store.quarantine import quarantine_usage
from store.rejected import refusals_since
from streetsense.config import IngestSettings

# Refusals that mean a bound was hit: someone floods, or the bounds are too small for the city.
BOUNDS_HIT: Final = ("rate_limited", "too_large", "quarantine_full", "quarantine_site_full")
QUARANTINE_WARN_SHARE: Final = 0.8


def refusals_check(conn: psycopg.Connection, settings: IngestSettings) -> list[Check]:
    """Report refusals of the last 24 h by reason, and quarantine's use of its bounds."""
    try:
        counts = refusals_since(conn, datetime.now(UTC) - timedelta(days=1))
        usage = quarantine_usage(conn)
    except psycopg.Error as exc:
        return [Check("refused data", WARN, f"cannot read it ({str(exc).splitlines()[0]})", "")]
    checks = []
    said = ", ".join(f"{code} {count}" for code, count in list(counts.items())[:6]) or "none"
    hit = {code: counts[code] for code in BOUNDS_HIT if counts.get(code)}
    if hit:
        checks.append(
            Check(
                "refused data",
                WARN,
                f"last 24 h: {said}; bounds were hit ({', '.join(hit)})",
                "see `streetsense export rejected`: a device flooding or a stranger inventing "
                "ids; raise ingest.device_rate_per_s or the quarantine bounds only if the "
                "senders are yours",
            )
        )
    else:
        checks.append(Check("refused data", OK, f"last 24 h: {said}"))
    ids = max((len(devices) for devices in usage.devices_by_site.values()), default=0)
    full = usage.payload_bytes / max(1, settings.quarantine_max_bytes)
    detail = (
        f"{usage.payload_bytes} of {settings.quarantine_max_bytes} bytes, at most {ids} of "
        f"{settings.quarantine_devices_per_site} unknown ids on one site"
    )
    if full >= QUARANTINE_WARN_SHARE or ids >= settings.quarantine_devices_per_site:
        fix = "register the quarantined devices and replay them, or raise the bounds"
        checks.append(Check("quarantine", WARN, detail, fix))
    else:
        checks.append(Check("quarantine", OK, detail))
    return checks
