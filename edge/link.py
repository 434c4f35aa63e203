"""The MQTT link (5, or 3.1.1 for older brokers): TLS, credentials, Last Will, reconnects.

With several brokers in `mqtt.url` (the nodes of a cluster), a failed connection or a lost link
moves the agent to the next node (streetsense.broker.Failover), after the same backoff.

The network loop runs on its own thread; everything it learns (connected, lost, a message, a
PUBACK) is queued as a `LinkEvent` for the agent's main thread, which owns the buffer.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.config import AgentConfig
from streetsense.backoff import Backoff
from streetsense.broker import Failover, configure_client, connect_error, use_password
from streetsense.broker_reasons import explain
from streetsense.readings import Reading, encode_readings, epoch_to_datetime
from streetsense.senml import encode_pack
from streetsense.topics import Channel, Topics

log = logging.getLogger(__name__)
OFFLINE: Final = encode_pack([{"n": "online", "vb": False}])


@dataclass(frozen=True, slots=True)
class LinkEvent:
    """Something the network thread saw: `up`, `down`, `refused`, `message` or `puback`."""

    what: str
    topic: str = ""
    payload: bytes = b""
    mid: int = 0
    ok: bool = True
    reason: str = ""


def online_payload(device_id: str, at: float) -> bytes:
    """Return the retained online status `[{"n":"online","vb":true,"bt":<time>}]`."""
    moment = epoch_to_datetime(round(at * 1000) / 1000)
    return encode_readings([Reading(device_id, "online", moment, 1.0)])


def make_client(config: AgentConfig) -> mqtt.Client:
    """Build a paho client with the config's credentials, TLS and Last Will.

    Raises:
        ConfigError: a TLS or password file cannot be read; the message names the setting.
    """
    target = config.broker()
    if target.v5:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=config.client_id,
            protocol=mqtt.MQTTv5,
            transport=target.transport,  # type: ignore[arg-type]
        )
    else:
        # No clean start: the broker keeps the ack/config subscriptions and queued QoS 1
        # messages for this client id across reconnects, as MQTT 5 session state would.
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=config.client_id,
            protocol=mqtt.MQTTv311,
            clean_session=False,
            transport=target.transport,  # type: ignore[arg-type]
        )
    configure_client(client, target)
    topics = Topics(config.mqtt.topic_prefix)
    status = topics.device(config.device.site, config.device.id, Channel.STATUS)
    client.will_set(status, OFFLINE, qos=1, retain=True)
    client.connect_timeout = config.mqtt.connect_timeout_s
    return client


def ping_interval(keepalive_s: int) -> int:
    """Return the keepalive given to the MQTT client so a dead link is found in 1.5x keepalive.

    paho pings after one interval of silence and gives up one interval later: two intervals
    of silence at worst. Half the configured keepalive keeps that within the promise.
    """
    return max(1, keepalive_s // 2)


class Link:
    """Keep one MQTT connection up and report what happens on it.

    An enrolled agent also reads its fleet topics (`extra_topics`) and takes its password
    from its credential store before each connection (`password`), so a rotation needs no
    restart.
    """

    def __init__(
        self,
        config: AgentConfig,
        *,
        extra_topics: Sequence[str] = (),
        password: Callable[[], str | None] | None = None,
    ) -> None:
        self.config = config
        self._extra_topics = list(extra_topics)
        self._password = password
        topics = Topics(config.mqtt.topic_prefix)
        site, device = config.device.site, config.device.id
        self.status_topic = topics.device(site, device, Channel.STATUS)
        self.ack_topic = topics.device(site, device, Channel.ACK)
        self.config_topic = topics.device(site, device, Channel.CONFIG)
        self.events: queue.Queue[LinkEvent] = queue.Queue()
        self.connected = threading.Event()
        self.connected_since: float | None = None
        self.last_error = ""
        self._stop = threading.Event()
        self._backoff = Backoff(config.mqtt.backoff_min_s, config.mqtt.backoff_max_s)
        self.failover = Failover(config.broker(), config.client_id)
        self.node = ""  # the broker node connected to, while the link is up
        self._client = make_client(config)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_publish = self._on_publish
        self._thread = threading.Thread(target=self._run, name="mqtt-link", daemon=True)

    def start(self) -> Link:
        """Start connecting in the background."""
        self._thread.start()
        return self

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> int | None:
        """Publish at QoS 1; return the message id, or None when the link is down."""
        if not self.connected.is_set():
            return None
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return None
        return int(info.mid)

    def subscribe(self, topic: str) -> bool:
        """Subscribe at QoS 1 now (not again after a reconnect); False when the link is down."""
        if not self.connected.is_set():
            return False
        return self._client.subscribe(topic, qos=1)[0] == mqtt.MQTT_ERR_SUCCESS

    def unsubscribe(self, topic: str) -> None:
        """Drop a subscription made with `subscribe`."""
        if self.connected.is_set():
            self._client.unsubscribe(topic)

    def stop(self) -> None:
        """Say we are going offline (retained), disconnect, and stop the thread."""
        if self.connected.is_set():
            info = self._client.publish(self.status_topic, OFFLINE, qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=2.0)
            except (RuntimeError, ValueError) as exc:
                log.info("offline status not confirmed: %s", exc)
        self._stop.set()
        self._client.disconnect()
        self._thread.join(timeout=5.0)

    def _run(self) -> None:
        target = self.failover.target
        while not self._stop.is_set():
            # after a refusal or a lost link, the next node of a cluster may still be up
            endpoint = self.failover.next_attempt()
            if self._password is not None:
                use_password(self._client, target, self._password())
            try:
                self._client.connect(
                    endpoint.host, endpoint.port, ping_interval(self.config.mqtt.keepalive_s)
                )
            except (OSError, ValueError) as exc:
                self.last_error = f"cannot connect: {connect_error(exc, target, endpoint)}"
                log.warning("%s", self.last_error)
            else:
                self._loop()
                if self.connected_since is not None:
                    self._backoff.reset()
            # a street of devices that lost the same broker must not return in step
            self._stop.wait(self._backoff.next_delay())

    def _loop(self) -> None:
        code = mqtt.MQTT_ERR_SUCCESS
        while not self._stop.is_set():
            code = self._client.loop(timeout=0.5)
            if code != mqtt.MQTT_ERR_SUCCESS:
                break
        self._mark_down(mqtt.error_string(code) if not self._stop.is_set() else "stopping")

    def _mark_down(self, reason: str) -> None:
        if self.connected.is_set():
            self.connected.clear()
            self.connected_since = None
            self.node = ""
            log.warning("link down: %s", reason)
            self.events.put(LinkEvent("down", reason=reason))

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if reason.is_failure:
            self.last_error = f"the broker refused the connection: {explain(reason.value)}"
            log.error("%s", self.last_error)
            self.events.put(LinkEvent("refused", reason=self.last_error))
            return
        client.publish(
            self.status_topic, online_payload(self.config.device.id, time.time()), 1, True
        )
        client.subscribe(
            [(self.ack_topic, 1), (self.config_topic, 1), *((t, 1) for t in self._extra_topics)]
        )
        self.connected_since = time.time()
        self.last_error = ""
        self.node = self.failover.where()
        self.connected.set()
        log.info("link up: %s", self.node)
        self.events.put(LinkEvent("up"))

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        self._mark_down(str(reason))

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        self.events.put(LinkEvent("message", topic=message.topic, payload=bytes(message.payload)))

    def _on_publish(
        self, _client: mqtt.Client, _userdata: Any, mid: int, reason: Any, _props: Any
    ) -> None:
        self.events.put(LinkEvent("puback", mid=mid, ok=not reason.is_failure))
