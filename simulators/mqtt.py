"""Publishing to the broker at QoS 1, paced by the broker's acknowledgements.

With several brokers in `mqtt.url` (a cluster's nodes), a refused connection or a lost link
moves the publisher to the next node, after the kernel's jittered backoff.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from types import TracebackType
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from streetsense.backoff import Backoff
from streetsense.broker import Failover, configure_client, connect_error
from streetsense.broker_reasons import explain
from streetsense.config import Settings
from streetsense.errors import ServiceUnavailableError

log = logging.getLogger(__name__)


KEEPALIVE_S = 30


class FailoverClient(paho.Client):
    """paho's client whose every reconnect goes to the next broker node, after our backoff."""

    def __init__(self, failover: Failover, **options: Any) -> None:
        super().__init__(**options)
        self.failover = failover
        self.backoff = Backoff(1.0, 30.0)
        self.stopping = threading.Event()  # ends a reconnect wait at once

    def reconnect(self) -> MQTTErrorCode:
        """Connect to the next node of the list (the first call: the start node)."""
        endpoint = self.failover.next_attempt()
        # connect_async is paho's public way to re-aim a client between two attempts
        self.connect_async(endpoint.host, endpoint.port, keepalive=KEEPALIVE_S)
        return super().reconnect()

    def _reconnect_wait(self) -> None:
        # paho doubles its delay in step; ours is jittered so restarted publishers spread out
        self.stopping.wait(self.backoff.next_delay())


def make_client(settings: Settings, role: str) -> FailoverClient:
    """Return a configured, not yet connected client.

    Raises:
        ConfigError: mqtt.url or the TLS and password files are wrong; names the setting.
    """
    target = settings.broker()
    client_id = f"{settings.mqtt.client_id or 'streetsense-sim'}-{role}-{uuid.uuid4().hex[:8]}"
    client = FailoverClient(
        Failover(target, client_id),
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv5 if target.v5 else paho.MQTTv311,
        transport=target.transport,
    )
    configure_client(client, target)
    return client


# How long a stopped command waits for the broker to acknowledge what it already sent.
STOP_FLUSH_S = 5.0
# A wait for acknowledgements this long without one is logged.
STALL_S = 1.0


class PublishStoppedError(ServiceUnavailableError):
    """A publish gave up waiting for the broker because the command is stopping."""


class PacedPublisher:
    """Publishes at QoS 1 with at most `window` messages unacknowledged by the broker.

    Pacing by PUBACKs keeps the broker's queues and ours bounded whatever the send rate asked.
    Once `stop` is set (SIGTERM, SIGINT), a publish waiting for acknowledgements gives up at
    once (PublishStoppedError), so that a hung broker cannot hold up a stop.
    """

    def __init__(
        self,
        settings: Settings,
        window: int = 500,
        role: str = "pub",
        ack_timeout_s: float = 60.0,
        stop: threading.Event | None = None,
    ) -> None:
        self.client = make_client(settings, role)
        self.target = settings.broker()
        self.stop = stop
        # A flush that timed out: the broker is not answering, nothing more is waited for.
        self.gave_up = False
        self.window = window
        self.low_water = window // 2
        self.ack_timeout_s = ack_timeout_s
        self.client.max_inflight_messages_set(window)
        self.sent = 0
        self.acked = 0
        self._last_ack_at = time.monotonic()
        self._changed = threading.Condition()
        self._connected = threading.Event()
        self.client.on_publish = self._on_publish
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect

    def __enter__(self) -> PacedPublisher:
        failures = []
        for _node in self.target.endpoints:  # each node of a cluster once, then give up
            try:
                self.client.reconnect()
                break
            except OSError as exc:
                failures.append(connect_error(exc, self.target, self.client.failover.endpoint))
        else:
            raise ServiceUnavailableError("; ".join(failures))
        self.client.loop_start()
        if not self._connected.wait(10):
            self.client.stopping.set()
            self.client.loop_stop()
            raise ServiceUnavailableError(
                f"the MQTT broker at {self.client.failover.where()} did not accept the "
                "connection within 10 s; check credentials and mqtt.url"
            )
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is None and not self.gave_up:
            # Callers flush with their own patience first; this one only catches stragglers.
            self.flush(10.0)
        self.client.stopping.set()
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish one message, waiting first while the window of unacknowledged ones is full."""
        with self._changed:
            if self.sent - self.acked >= self.window:
                self._wait_below(self.low_water, self.ack_timeout_s)
            self.sent += 1
        self.client.publish(topic, payload, qos=1, retain=retain)

    def _wait_below(self, level: int, timeout: float) -> None:
        # Waking once the window is half empty, not at every PUBACK, saves a thread switch
        # per message: the publisher then sends half a window in one go.
        began = time.monotonic()
        deadline, said = began + timeout, False
        while self.sent - self.acked > level:
            left = deadline - time.monotonic()
            # A publish waiting for room (level > 0) gives up on a stop; a flush (level 0) is
            # the stop's own brief wait for acks, bounded by STOP_FLUSH_S.
            if self.stop is not None and self.stop.is_set() and level > 0:
                raise PublishStoppedError(
                    f"stopping with {self.sent - self.acked} messages unacknowledged by the broker"
                )
            if left <= 0:
                raise ServiceUnavailableError(
                    f"the broker acknowledged nothing for {timeout:.0f} s "
                    f"({self.sent - self.acked} messages waiting); is it overloaded or down?"
                )
            self._changed.wait(min(left, 1.0))
            # Quiet since the wait began or the last ack, whichever is later: acks already on
            # the wire when the broker hung must not hide the stall.
            quiet_s = time.monotonic() - max(began, self._last_ack_at)
            if not said and quiet_s >= STALL_S:
                # said once per wait: a hung broker is visible long before the timeout
                log.info(
                    "the broker acknowledged nothing for %.0f s; %d messages wait for it",
                    STALL_S,
                    self.sent - self.acked,
                )
                said = True

    def flush(self, timeout: float = 120.0) -> bool:
        """Wait until the broker acknowledged everything sent; False if it did not in time.

        Once stopped, it waits at most STOP_FLUSH_S: a stop must stay prompt with a hung broker.
        """
        if self.stop is not None and self.stop.is_set():
            timeout = min(timeout, STOP_FLUSH_S)
        with self._changed:
            try:
                self._wait_below(0, timeout)
            except ServiceUnavailableError:
                waiting = self.sent - self.acked
                log.warning("%d messages unacknowledged after %.0f s", waiting, timeout)
                self.gave_up = True
                return False
        return True

    def _on_publish(
        self, _client: paho.Client, _userdata: Any, _mid: int, _reason: ReasonCode, _props: Any
    ) -> None:
        with self._changed:
            self.acked += 1
            self._last_ack_at = time.monotonic()
            waiting = self.sent - self.acked
            if waiting in (self.low_water, 0):
                self._changed.notify_all()

    def _on_connect(
        self, _client: paho.Client, _userdata: Any, _flags: Any, reason: ReasonCode, _props: Any
    ) -> None:
        if reason.is_failure:
            log.warning("the broker refused the connection: %s", explain(reason.value))
            return
        self.client.backoff.reset()
        self._connected.set()

    def _on_disconnect(
        self, _client: paho.Client, _userdata: Any, _flags: Any, reason: ReasonCode, _props: Any
    ) -> None:
        if reason.is_failure:
            log.warning("disconnected from the broker (%s); reconnecting", explain(reason.value))
