"""The fleet service's MQTT connection: its subscriptions, a queue of what arrives, and the
dynamic security plugin's answers routed to whoever waits for them."""

from __future__ import annotations

import json
import logging
import queue
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from streetsense.broker import BrokerTarget, configure_client, connect_error
from streetsense.broker_reasons import explain
from streetsense.errors import ServiceUnavailableError

log = logging.getLogger(__name__)
CONTROL: Final = "$CONTROL/dynamic-security/v1"
CONTROL_RESPONSE: Final = CONTROL + "/response"


@dataclass(frozen=True, slots=True)
class Message:
    """A message the service received."""

    topic: str
    payload: bytes
    retain: bool


class _Waiter:
    def __init__(self, count: int) -> None:
        self.done = threading.Event()
        self.count = count
        self.responses: dict[str, dict[str, Any]] = {}


class FleetLink:
    """One MQTT 5 connection of the fleet service (or a CLI command) to the broker."""

    def __init__(self, target: BrokerTarget, subscriptions: Sequence[str], name: str) -> None:
        self.target = target
        self.subscriptions = [CONTROL_RESPONSE, *subscriptions]
        self.messages: queue.Queue[Message] = queue.Queue()
        self.connected = threading.Event()
        self._refused: str = ""
        self._lock = threading.Lock()
        self._waiters: dict[str, _Waiter] = {}
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{name}-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
            transport=target.transport,  # type: ignore[arg-type]
        )
        configure_client(self._client, target)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(1, 5)

    def start(self, timeout_s: float = 10.0) -> FleetLink:
        """Connect and wait for the broker to accept us.

        Raises:
            ServiceUnavailableError: the broker cannot be reached or refuses the credentials.
        """
        endpoint = self.target.endpoint
        try:
            self._client.connect(endpoint.host, endpoint.port, keepalive=30)
        except (OSError, ValueError) as exc:
            raise ServiceUnavailableError(connect_error(exc, self.target)) from exc
        self._client.loop_start()
        if not self.connected.wait(timeout_s):
            self.stop()
            why = self._refused or f"no answer within {timeout_s} s"
            raise ServiceUnavailableError(
                f"the broker {self.target.describe()} did not accept the fleet service: {why}; "
                "check mqtt.username and mqtt.password_file (the fleet service's client, "
                "created by `streetsense fleet broker init`)"
            )
        return self

    def stop(self) -> None:
        """Disconnect and stop the network thread."""
        self._client.disconnect()
        self._client.loop_stop()

    def publish(
        self, topic: str, payload: bytes, *, retain: bool = False, wait_s: float = 10.0
    ) -> None:
        """Publish at QoS 1 and wait for the broker's PUBACK.

        Raises:
            ServiceUnavailableError: not connected, or no PUBACK in time.
        """
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        try:
            info.wait_for_publish(wait_s)
        except (RuntimeError, ValueError) as exc:
            raise ServiceUnavailableError(f"cannot publish on {topic}: {exc}") from exc
        if not info.is_published():
            raise ServiceUnavailableError(f"the broker did not take {topic} within {wait_s} s")

    def control(
        self, commands: list[dict[str, Any]], timeout_s: float = 10.0
    ) -> list[dict[str, Any]]:
        """Send dynamic security commands in one message; return their responses, in order.

        Raises:
            ServiceUnavailableError: no answer in time (the plugin is not loaded, or we may not
                use it).
        """
        tagged = []
        for command in commands:
            tagged.append({**command, "correlationData": uuid.uuid4().hex})
        waiter = _Waiter(len(tagged))
        with self._lock:
            for command in tagged:
                self._waiters[command["correlationData"]] = waiter
        try:
            self.publish(CONTROL, json.dumps({"commands": tagged}).encode(), wait_s=timeout_s)
            if not waiter.done.wait(timeout_s):
                raise ServiceUnavailableError(
                    f"the broker's dynamic security plugin did not answer within {timeout_s} s: "
                    "is mosquitto_dynamic_security.so loaded (deploy/mosquitto/dynsec.conf), and "
                    "does this client hold the streetsense-fleet role?"
                )
        finally:
            with self._lock:
                for command in tagged:
                    self._waiters.pop(command["correlationData"], None)
        return [waiter.responses[command["correlationData"]] for command in tagged]

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if reason.is_failure:
            self._refused = explain(reason.value)
            log.error("the broker refused the fleet service: %s", self._refused)
            return
        client.subscribe([(topic, 1) for topic in self.subscriptions])
        self.connected.set()

    def _on_disconnect(self, *_args: Any) -> None:
        if self.connected.is_set():
            log.warning("fleet link down; reconnecting")
        self.connected.clear()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic == CONTROL_RESPONSE:
            self._on_response(bytes(message.payload))
            return
        self.messages.put(Message(message.topic, bytes(message.payload), bool(message.retain)))

    def _on_response(self, payload: bytes) -> None:
        try:
            responses = json.loads(payload).get("responses", [])
        except (ValueError, AttributeError):
            log.warning("unreadable dynamic security response: %r", payload[:200])
            return
        with self._lock:
            for response in responses:
                if not isinstance(response, dict):
                    continue
                waiter = self._waiters.get(str(response.get("correlationData")))
                if waiter is None:
                    continue  # another client's, or one we stopped waiting for
                waiter.responses[str(response["correlationData"])] = response
                if len(waiter.responses) == waiter.count:
                    waiter.done.set()
