"""Replay a device's quarantined messages once the registry knows it."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from store.db import connect, require_url
from store.quarantine import known_among, quarantined, release_quarantine
from streetsense.config import Settings
from streetsense.errors import RegistryError, ServiceUnavailableError

log = logging.getLogger(__name__)


def replay_quarantine(settings: Settings, device_id: str) -> int:
    """Publish the device's quarantined messages again (QoS 1) and mark them released.

    Returns:
        How many messages were replayed.

    Raises:
        RegistryError: the device is still unknown (its messages would be quarantined again).
        ServiceUnavailableError: the broker cannot be reached.
    """
    with connect(require_url(settings.database), autocommit=True) as conn:
        if not known_among(conn, [device_id]) and not settings.ingest.auto_register:
            raise RegistryError(
                f"device '{device_id}' is not in the registry: add it and run "
                "`streetsense registry load` first, or its messages are quarantined again"
            )
        messages = quarantined(conn, device_id)
        if not messages:
            return 0
        _publish(settings, messages)
        released = release_quarantine(conn, device_id)
    log.info("replayed %d quarantined messages of %s", released, device_id)
    return len(messages)


def _publish(settings: Settings, messages: list[tuple[str, bytes]]) -> None:
    parts = urlsplit(settings.mqtt.url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    if settings.mqtt.username:
        client.username_pw_set(settings.mqtt.username, settings.mqtt_password())
    if parts.scheme == "mqtts":
        client.tls_set(ca_certs=settings.mqtt.ca_file or None)
    try:
        client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    except OSError as exc:
        raise ServiceUnavailableError(
            f"cannot reach the broker at {settings.mqtt.url}: {exc}; start it or fix mqtt.url"
        ) from exc
    client.loop_start()
    try:
        for topic, payload in messages:
            client.publish(topic, payload, qos=1).wait_for_publish(30)
    finally:
        client.disconnect()
        client.loop_stop()
