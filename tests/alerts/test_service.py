"""One round of the service: rollups refreshed, rules evaluated, outbox delivered, and the
platform gauges Prometheus scrapes (deploy/prometheus/streetsense-rules.yml) set."""

from __future__ import annotations

import psycopg
import pytest

from alerts.metrics import AlertsMetrics
from alerts.rules import parse_rules
from alerts.service import one_round
from streetsense.config import Settings
from tests.alerts.support import at, health, load_city


def test_one_round_sets_the_gauges_operators_alert_on(
    database_url: str, db: psycopg.Connection, settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("TEST_ALERTS_SECRET", "0123456789abcdef0123456789abcdef")
    load_city(db)
    health(db, ["counter", "gw"], at(0))  # a past day: both silent by now
    rules = parse_rules("""
[[rule]]
name = "offline"
kind = "device_offline"
severity = "critical"
notify = ["ops"]

[channel.ops]
type = "webhook"
url = "http://127.0.0.1:9/nobody"
secret_env = "TEST_ALERTS_SECRET"
""")
    metrics = AlertsMetrics()
    with psycopg.connect(database_url, autocommit=True) as conn:
        one_round(conn, rules, settings, metrics)
    value = metrics.registry.get_sample_value
    assert value("streetsense_alerts_evaluations_total") == 1
    assert value("streetsense_alerts_active", {"rule": "offline", "severity": "critical"}) == 2
    assert value("streetsense_alerts_outbox_pending", {"channel": "ops"}) == 1  # nobody there
    assert value("streetsense_alerts_notification_failures_total") == 1
    assert (value("streetsense_database_size_bytes") or 0) > 0
