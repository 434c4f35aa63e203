"""Turn transitions into notifications: grouped per rule, area and transition (storm control),
held back through a rule's quiet hours, one outbox row per channel."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

import psycopg

from alerts.rules import RuleSet
from store import alerts as store

log = logging.getLogger(__name__)
# Subjects listed in one notification; the rest are counted ("and 440 more").
MAX_LISTED: Final = 50
EVENTS_PER_PASS: Final = 50_000


def queue_notifications(
    conn: psycopg.Connection, rules: RuleSet, now: datetime, timezone: str
) -> int:
    """Queue every transition not yet queued whose rule is not in its quiet hours.

    Returns the number of outbox rows written.
    """
    local = now.astimezone(ZoneInfo(timezone)).time()
    by_name = {r.name: r for r in rules.rules}
    written = 0
    while True:
        events = store.unqueued_events(conn, EVENTS_PER_PASS)
        ready = []
        for event in events:
            rule = by_name.get(event.rule)
            if rule is not None and rule.quiet_hours and rule.quiet_hours.contains(local):
                continue
            ready.append(event)
        groups: dict[tuple[str, str, str], list[store.Event]] = {}
        for event in ready:
            groups.setdefault((event.rule, event.area, event.transition), []).append(event)
        notifications = []
        for (rule_name, area, transition), members in groups.items():
            rule = by_name.get(rule_name)
            if rule is None:
                continue  # a rule since removed from the file: recorded, sent nowhere
            payload = _payload(rule_name, area, transition, members)
            notifications += [(channel, payload) for channel in rule.notify]
        store.queue(conn, [e.event_id for e in ready], now, notifications)
        written += len(notifications)
        if len(events) < EVENTS_PER_PASS or not ready:
            return written


def _payload(
    rule: str, area: str, transition: str, events: Sequence[store.Event]
) -> dict[str, Any]:
    first = events[0]
    kinds = sorted({e.subject_kind for e in events})
    where = f" in {area}" if area else ""
    noun = "/".join(kinds) + ("s" if len(events) > 1 else "")
    title = f"{transition.upper()} {rule}: {len(events)} {noun}{where}"
    if len(events) == 1:
        title = f"{transition.upper()} {rule}: {first.summary}"
    return {
        "version": 1,
        "title": title,
        "rule": rule,
        "severity": first.severity,
        "transition": transition,
        "area": area,
        "sites": sorted({e.site_id for e in events}),
        "count": len(events),
        "more": max(len(events) - MAX_LISTED, 0),
        "subjects": [
            {
                "alert_id": e.alert_id,
                "event_id": e.event_id,
                "subject_kind": e.subject_kind,
                "subject_id": e.subject_id,
                "since": e.since.isoformat(),
                "at": e.at.isoformat(),
                "value": e.value,
                "summary": e.summary,
                **({"by": e.actor, "note": e.note} if transition == "acknowledged" else {}),
            }
            for e in events[:MAX_LISTED]
        ],
    }
