"""Notifications on an MQTT topic (QoS 1), on the broker the settings name."""

from __future__ import annotations

import uuid

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from alerts.webhook import DeliveryError
from streetsense.broker import configure_client
from streetsense.config import Settings
from streetsense.errors import ConfigError


class Publisher:
    """One connection for a delivery pass; publish waits for the broker's PUBACK."""

    def __init__(self, settings: Settings, timeout_s: float) -> None:
        if not settings.mqtt.url:
            raise ConfigError("an mqtt alert channel needs a broker: set STREETSENSE_MQTT_URL")
        target = settings.broker()
        self.timeout_s = timeout_s
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"streetsense-alerts-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5 if target.v5 else mqtt.MQTTv311,
            transport=target.transport,  # type: ignore[arg-type]
        )
        configure_client(self.client, target)
        self.host, self.port = target.endpoint.host, target.endpoint.port
        self.connected = False

    def publish(self, topic: str, payload: bytes, qos: int) -> None:
        """Publish one message and wait for the broker to take it."""
        try:
            if not self.connected:
                self.client.connect(self.host, self.port, keepalive=30)
                self.client.loop_start()
                self.connected = True
            info = self.client.publish(topic, payload, qos=qos)
            info.wait_for_publish(self.timeout_s)
        except (OSError, ValueError, RuntimeError) as exc:
            raise DeliveryError(f"MQTT {self.host}:{self.port}: {exc}") from exc
        if not info.is_published():
            raise DeliveryError(
                f"MQTT {self.host}:{self.port}: no PUBACK within {self.timeout_s} s"
            )

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        if self.connected:
            self.client.disconnect()
            self.client.loop_stop()
            self.connected = False
