"""One evaluation: every rule on one snapshot, lifecycle moved on, notifications queued."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime

import psycopg

from alerts.evaluate import Findings, evaluate, in_scope
from alerts.lifecycle import EVERYTHING, Outcome, apply
from alerts.notify import queue_notifications
from alerts.rules import Rule, RuleSet
from alerts.snapshot import Snapshot
from store import alerts as store

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Report:
    """What one evaluation did."""

    at: datetime
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    queued: int = 0
    seconds: float = 0.0
    skipped: bool = False  # another evaluation held the lock


def run_once(
    conn: psycopg.Connection,
    rules: RuleSet,
    now: datetime,
    timezone: str,
    last_run: dict[str, datetime] | None = None,
) -> Report:
    """Evaluate every rule that is due at `now` in one transaction; queue the notifications.

    Args:
        conn: a connection (not in a transaction).
        rules: the rules, channels and maintenance windows.
        now: the evaluation time (timezone-aware UTC).
        timezone: the city's IANA zone, where quiet hours are counted.
        last_run: when each rule was last evaluated, kept by the caller between rounds: a rule
            with `every_min` is skipped until it is due (None: every rule is due).
    """
    started = time.perf_counter()
    with conn.transaction():
        if not store.try_evaluation_lock(conn):
            log.warning("another alerts evaluation is running; skipping this one")
            return Report(now, skipped=True)
        snap = Snapshot(conn, now, timezone)
        outcomes = {}
        for rule in rules.rules:
            if last_run is not None and not _due(rule, last_run, now):
                continue
            findings = evaluate(rule, snap)
            frozen = _frozen(rule, rules, findings, now)
            outcomes[rule.name] = apply(conn, rule, findings, frozen, now)
            if last_run is not None:
                last_run[rule.name] = now
        queued = queue_notifications(conn, rules, now, timezone)
    seconds = time.perf_counter() - started
    fired = sum(o.fired for o in outcomes.values())
    resolved = sum(o.resolved for o in outcomes.values())
    log.info(
        "alerts evaluated in %.2f s: %d fired, %d resolved, %d notifications queued",
        seconds, fired, resolved, queued,
    )  # fmt: skip
    return Report(now, outcomes, queued, seconds)


def _due(rule: Rule, last_run: dict[str, datetime], now: datetime) -> bool:
    last = last_run.get(rule.name)
    return last is None or (now - last).total_seconds() >= rule.every_s or now < last


def _frozen(rule: Rule, rules: RuleSet, findings: Findings, now: datetime) -> set[tuple[str, str]]:
    """Return the subjects under an open maintenance window that covers this rule."""
    frozen: set[tuple[str, str]] = set()
    for window in rules.maintenance:
        if not window.active(now) or (window.rules and rule.name not in window.rules):
            continue
        if window.scope.everywhere:
            return {EVERYTHING}
        frozen |= {key for key, c in findings.items() if in_scope(window.scope, c)}
    return frozen
