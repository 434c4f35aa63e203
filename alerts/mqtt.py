"""Notifications on an MQTT topic (QoS 1), on the broker the settings name."""

from __future__ import annotations

import ssl
import uuid
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from alerts.webhook import DeliveryError
from streetsense.config import Settings
from streetsense.errors import ConfigError


class Publisher:
    """One connection for a delivery pass; publish waits for the broker's PUBACK."""

    def __init__(self, settings: Settings, timeout_s: float) -> None:
        url = settings.mqtt.url
        if not url:
            raise ConfigError("an mqtt alert channel needs a broker: set STREETSENSE_MQTT_URL")
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ConfigError(f"mqtt.url {url!r} must look like mqtt://host:1883 or mqtts://...")
        self.timeout_s = timeout_s
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"streetsense-alerts-{uuid.uuid4().hex[:8]}"
        )
        if settings.mqtt.username:
            self.client.username_pw_set(settings.mqtt.username, settings.mqtt_password())
        if parts.scheme == "mqtts":
            context = ssl.create_default_context(cafile=settings.mqtt.ca_file or None)
            if settings.mqtt.cert_file:
                context.load_cert_chain(settings.mqtt.cert_file, settings.mqtt.key_file or None)
            self.client.tls_set_context(context)
        self.host = parts.hostname
        self.port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
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
