"""Prometheus metrics of the feeds service, for operators: what /health keeps to itself.

The public /health says only whether the feeds are current. Why not (the database unreachable,
MQTT down), how many streams and connections are open, what was refused or dropped, is read
here on the metrics port (feeds.metrics_port, loopback by default) and in the service's log,
which names the database error.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from feeds.limits import Refusal
from feeds.runtime import Runtime, healthy
from streetsense.listen import listen_error

log = logging.getLogger(__name__)
_NS = "streetsense_feeds"


class FeedsCollector(Collector):
    """Reads the service's state at each scrape: nothing to update on the request path."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        """Yield every metric's current value."""
        runtime, engine = self.runtime, self.runtime.engine
        age = math.nan if engine.last_poll_ok is None else time.monotonic() - engine.last_poll_ok
        yield _gauge("healthy", "1 when /health says ok (current data)", healthy(runtime))
        yield _gauge("refresh_age_seconds", "since the snapshot was last refreshed", age)
        reached = engine.last_error is None and engine.last_poll_ok is not None
        yield _gauge("database_ok", "1 when the last refresh reached the database", reached)
        yield _counter(
            "refresh_failures", "refreshes that failed (the log names the error)", engine.failures
        )
        yield _counter(
            "context_refreshes",
            "reads of trends, flows and forecasts, each rebuilding every lot and segment",
            engine.context_refreshes,
        )
        yield _gauge("lots", "lots in the snapshot", len(engine.snapshot.lots))
        yield _gauge("segments", "segments in the snapshot", len(engine.snapshot.segments))
        if runtime.republisher is not None:
            connected = runtime.republisher.connected
            yield _gauge("mqtt_connected", "1 while the republisher is connected", connected)
        for what, slots in (("streams", runtime.streams), ("connections", runtime.connections)):
            yield _gauge(f"{what}_open", f"{what} open now", slots.open)
            refused = CounterMetricFamily(
                f"{_NS}_{what}_refused", f"{what} refused with 429, by cap", labels=["cap"]
            )
            for cap in Refusal:
                refused.add_metric([cap.value], slots.refused[cap])
            yield refused
        dropped = CounterMetricFamily(
            f"{_NS}_connections_dropped", "connections closed on a slow client", labels=["reason"]
        )
        dropped.add_metric(["slow_head"], runtime.dropped.slow_head)
        dropped.add_metric(["slow_reader"], runtime.dropped.slow_reader)
        yield dropped


def _gauge(name: str, text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{_NS}_{name}", text, value=float(value))


def _counter(name: str, text: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(f"{_NS}_{name}", text, value=float(value))


class FeedsMetrics:
    """The feeds' metrics endpoint on a registry of its own."""

    def __init__(self, runtime: Runtime) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(FeedsCollector(runtime))
        self._server: Any = None

    def serve(self, host: str, port: int) -> None:
        """Expose /metrics on host:port; port 0 leaves it off.

        Raises:
            ConfigError: the port cannot be listened on (names feeds.metrics_port).
        """
        if not port:
            return
        try:
            served = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise listen_error("feeds.metrics_port", host, port, exc) from exc
        self._server = served[0] if isinstance(served, tuple) else None
        log.info("feeds metrics on http://%s:%d/metrics", host, port)

    def close(self) -> None:
        """Stop the metrics server."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
