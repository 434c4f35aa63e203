"""Prometheus metrics of the alerts service, and of the platform state it reads for operators'
alerting rules (deploy/prometheus/streetsense-rules.yml)."""

from __future__ import annotations

import logging
import time
from typing import Any

import psycopg
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from alerts.engine import Report
from store import alerts_reads
from streetsense.listen import listen_error

log = logging.getLogger(__name__)
_NS = "streetsense_alerts"


class AlertsMetrics:
    """Gauges refreshed after every round; counters of evaluations and deliveries."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.evaluations = Counter(f"{_NS}_evaluations", "rule evaluations run", registry=r)
        self.failures = Counter(f"{_NS}_round_failures", "rounds that failed", registry=r)
        self.seconds = Histogram(f"{_NS}_evaluation_seconds", "one evaluation", registry=r)
        self.last = Gauge(f"{_NS}_last_evaluation_timestamp_seconds",
                          "when the rules were last evaluated", registry=r)  # fmt: skip
        self.delivered = Counter(f"{_NS}_notifications_delivered", "sent", ["channel"], registry=r)
        self.failed = Counter(f"{_NS}_notification_failures", "failed attempts", registry=r)
        self.active = Gauge(f"{_NS}_active", "firing or acknowledged alerts",
                            ["rule", "severity"], registry=r)  # fmt: skip
        self.backlog = Gauge(f"{_NS}_outbox_pending", "undelivered notifications",
                             ["channel"], registry=r)  # fmt: skip
        self.backlog_age = Gauge(f"{_NS}_outbox_oldest_seconds",
                                 "age of the oldest undelivered notification", ["channel"],
                                 registry=r)  # fmt: skip
        self.forecast_age = Gauge("streetsense_forecast_age_seconds",
                                  "time since the stream's latest forecast run", ["stream"],
                                  registry=r)  # fmt: skip
        self.database_bytes = Gauge("streetsense_database_size_bytes", "database size",
                                    registry=r)  # fmt: skip
        self._server: Any = None

    def serve(self, host: str, port: int) -> None:
        """Expose /metrics on host:port; port 0 leaves it off.

        Raises:
            ConfigError: the port cannot be listened on (names alerts.metrics_port).
        """
        if port:
            try:
                served = start_http_server(port, addr=host, registry=self.registry)
            except OSError as exc:  # taken port: one line naming the setting, no traceback
                raise listen_error("alerts.metrics_port", host, port, exc) from exc
            self._server = served[0] if isinstance(served, tuple) else None
            log.info("metrics on http://%s:%d/metrics", host, port)

    def record_round(self, conn: psycopg.Connection, report: Report) -> None:
        """Count an evaluation and refresh the platform gauges from the database."""
        if not report.skipped:
            self.evaluations.inc()
            self.seconds.observe(report.seconds)
            self.last.set(time.time())
        state = alerts_reads.platform_state(conn)
        for gauge in (self.active, self.backlog, self.backlog_age):
            gauge.clear()
        for rule, severity, count in state.active:
            self.active.labels(rule, severity).set(count)
        for channel, count, age in state.outbox:
            self.backlog.labels(channel).set(count)
            self.backlog_age.labels(channel).set(age)
        for stream, age in state.forecast_age_s.items():
            self.forecast_age.labels(stream).set(age)
        self.database_bytes.set(state.database_bytes)

    def record_delivery(self, sent: dict[str, int], failed: int) -> None:
        """Count notifications sent per channel and failed attempts."""
        for channel, count in sent.items():
            self.delivered.labels(channel).inc(count)
        self.failed.inc(failed)

    def close(self) -> None:
        """Stop the metrics server."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
