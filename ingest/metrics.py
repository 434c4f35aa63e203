"""Prometheus metrics of the ingest service, on a registry of its own."""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from streetsense.listen import listen_error

log = logging.getLogger(__name__)
_NS = "streetsense_ingest"
_LATENESS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60, 300, 3600, 21600, 86400, 604800)
_BATCH_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000, 20000, 50000)


class IngestMetrics:
    """Counters, gauges and histograms of one ingest process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.received = Counter(f"{_NS}_messages_received", "MQTT messages received", registry=r)
        self.acked = Counter(
            f"{_NS}_messages_acked", "messages acknowledged after commit", registry=r
        )
        self.ignored = Counter(
            f"{_NS}_messages_ignored",
            "control-channel, feed and retained messages skipped",
            ["why"],
            registry=r,
        )
        self.written = Counter(f"{_NS}_readings_written", "new rows in readings", registry=r)
        self.duplicates = Counter(
            f"{_NS}_readings_duplicate", "readings already stored (re-sent)", registry=r
        )
        self.revised = Counter(
            f"{_NS}_readings_revised",
            "stored readings replaced by a higher revision (an amended interval count)",
            registry=r,
        )
        self.rejected = Counter(
            f"{_NS}_rejected", "rejected messages or records by reason", ["reason"], registry=r
        )
        self.sequence_lost = Counter(
            f"{_NS}_sequence_lost", "readings a device's seq_floor declared lost", registry=r
        )
        self.acks_published = Counter(
            f"{_NS}_acks_published", "end-to-end acks published", registry=r
        )
        self.batch_messages = Histogram(
            f"{_NS}_batch_messages", "messages per batch", buckets=_BATCH_BUCKETS, registry=r
        )
        self.batch_readings = Histogram(
            f"{_NS}_batch_readings", "readings per batch", buckets=_BATCH_BUCKETS, registry=r
        )
        self.commit_seconds = Histogram(f"{_NS}_commit_seconds", "batch commit latency", registry=r)
        self.lateness = Histogram(
            f"{_NS}_lateness_seconds",
            "received minus observed time of the newest reading, worst per device and batch",
            buckets=_LATENESS_BUCKETS,
            registry=r,
        )
        self.lag_messages = Gauge(
            f"{_NS}_lag_messages", "consumer lag: messages received, not yet committed", registry=r
        )
        self.lag_seconds = Gauge(
            f"{_NS}_lag_seconds", "consumer lag: age of the oldest uncommitted message", registry=r
        )
        self.poison = Counter(
            f"{_NS}_poison_messages",
            "messages isolated from a batch the database refused, kept in rejected_messages",
            registry=r,
        )
        self.database_errors = Counter(
            f"{_NS}_database_errors", "failed commits (retried)", registry=r
        )
        self.registry_reads = Counter(
            f"{_NS}_registry_reads",
            "reads of the registry readings are checked against (on a change, or every 5 min)",
            registry=r,
        )
        self.broker_connects = Counter(
            f"{_NS}_broker_connects", "broker (re)connections", registry=r
        )
        # in_place and paho_reader are the fast path; paho_message (QoS 2, topic aliases, or a
        # paho release without the internals it needs) is paho's slower one
        self.receive_path = Gauge(
            f"{_NS}_receive_path_messages",
            "messages received since start, by receive path",
            ["path"],
            registry=r,
        )
        self.other_part = Gauge(
            f"{_NS}_messages_other_part",
            "messages since start another process's part (ingest.partition) takes, acknowledged",
            registry=r,
        )
        self._server: Any = None

    def serve(self, host: str, port: int) -> None:
        """Expose /metrics on host:port; port 0 leaves it off.

        Raises:
            ConfigError: the port cannot be listened on (names ingest.metrics_port).
        """
        if port:
            try:
                served = start_http_server(port, addr=host, registry=self.registry)
            except OSError as exc:  # taken port: one line naming the setting, no traceback
                raise listen_error("ingest.metrics_port", host, port, exc) from exc
            self._server = served[0] if isinstance(served, tuple) else None
            log.info("metrics on http://%s:%d/metrics", host, port)

    def close(self) -> None:
        """Stop the metrics server."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def value(self, name: str, **labels: str) -> float:
        """Return a sample's current value (tests, benchmarks)."""
        found = self.registry.get_sample_value(name, labels)
        return 0.0 if found is None else found
