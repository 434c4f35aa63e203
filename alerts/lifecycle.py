"""The life of an alert: pending -> firing -> (acknowledged) -> resolved, damped against flapping.

An episode opens when its condition fires and only fires after holding for `for_min`; once
firing it resolves only after its condition stopped holding (the clearing edge, hysteresis)
for `clear_for_min`. One open episode per rule and subject: repeats change nothing.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import psycopg

from alerts.evaluate import Candidate, Findings
from alerts.rules import Rule
from store import alerts as store

# In `frozen`: a maintenance window covering every subject of the rule.
EVERYTHING: Final = ("*", "*")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one rule's evaluation changed."""

    opened: int = 0
    fired: int = 0
    dropped: int = 0
    resolved: int = 0
    open_total: int = 0


def apply(
    conn: psycopg.Connection,
    rule: Rule,
    findings: Findings,
    frozen: Collection[tuple[str, str]],
    now: datetime,
) -> Outcome:
    """Move the rule's episodes on by one evaluation, in the caller's transaction.

    Args:
        rule: the rule evaluated.
        findings: its candidates by (subject kind, subject id).
        frozen: subjects under a maintenance window: no new episode, open ones left as they are.
        now: the evaluation time.
    """
    open_by_key = {(a.subject_kind, a.subject_id): a for a in store.open_alerts(conn, rule.name)}
    everything = EVERYTHING in frozen
    new = [
        _new_alert(rule, c, now)
        for key, c in findings.items()
        if c.fire and key not in open_by_key and key not in frozen and not everything
    ]
    to_fire: list[tuple[int, Candidate]] = []
    dropped, clearing, resumed, resolved = [], [], [], []
    for key, alert in open_by_key.items():
        if everything or key in frozen:
            continue
        found = findings.get(key)
        if alert.state == "pending":
            if found is None or not found.fire:
                dropped.append(alert.alert_id)
            elif (now - alert.since).total_seconds() >= rule.for_s:
                to_fire.append((alert.alert_id, found))
        elif found is not None:
            if alert.clear_since is not None:
                resumed.append(alert.alert_id)
        elif alert.clear_since is None and rule.clear_for_s > 0:
            clearing.append(alert.alert_id)
        elif alert.clear_since is None or (
            (now - alert.clear_since).total_seconds() >= rule.clear_for_s
        ):
            resolved.append(alert.alert_id)
    store.insert_alerts(conn, new)
    store.fire(
        conn, [i for i, _ in to_fire], now, [c.value for _, c in to_fire],
        [c.summary for _, c in to_fire],
    )  # fmt: skip
    store.drop_pending(conn, dropped)
    store.set_clear_since(conn, clearing, now)
    store.set_clear_since(conn, resumed, None)
    store.resolve(conn, resolved, now)
    fired_now = sum(1 for a in new if a.state == "firing") + len(to_fire)
    return Outcome(
        opened=len(new),
        fired=fired_now,
        dropped=len(dropped),
        resolved=len(resolved),
        open_total=len(open_by_key) + len(new) - len(dropped) - len(resolved),
    )


def _new_alert(rule: Rule, c: Candidate, now: datetime) -> store.NewAlert:
    return store.NewAlert(
        rule=rule.name, subject_kind=c.subject_kind, subject_id=c.subject_id,
        site_id=c.site_id, area=c.area, severity=rule.severity, audience=rule.audience,
        state="firing" if rule.for_s <= 0 else "pending", since=now, value=c.value,
        summary=c.summary, details=c.details,
    )  # fmt: skip
