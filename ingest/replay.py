"""Replay messages kept aside: a device's quarantine once it is registered, and messages our
side refused (`store_refused`, `ingest_error`, `beyond_capacity`) once the cause is fixed."""

from __future__ import annotations

import logging
from typing import Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from store.db import connect, require_url
from store.quarantine import known_among, quarantined, release_quarantine
from store.rejected import cut_payloads, mark_replayed, replayable
from streetsense.broker import configure_client
from streetsense.config import Settings
from streetsense.errors import RegistryError, ServiceUnavailableError

log = logging.getLogger(__name__)
# Refusals that may be our side's (the database's, our code's, the registry's: a lot's capacity
# registered too low), not the payload's: worth sending again once fixed. A bad payload would
# only be refused again; so would a count that is still beyond its lot's corrected capacity.
REPLAYABLE_CODES: Final = ("store_refused", "ingest_error", "beyond_capacity")


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


def replay_rejected(settings: Settings) -> tuple[int, int]:
    """Publish again (QoS 1) the messages ingest refused on its side, and mark them replayed.

    Fix the cause first (the reason column says it); a message refused again is kept again.

    Returns:
        (replayed, left): how many were published, and how many could not be because only
        part of their payload was kept.

    Raises:
        ServiceUnavailableError: the broker cannot be reached.
    """
    with connect(require_url(settings.database), autocommit=True) as conn:
        rows = replayable(conn, REPLAYABLE_CODES)
        left = cut_payloads(conn, REPLAYABLE_CODES)
        if rows:
            _publish(settings, [(topic, payload) for _, topic, payload in rows])
            mark_replayed(conn, [row_id for row_id, _, _ in rows])
    log.info("replayed %d refused messages; %d kept only in part, not replayable", len(rows), left)
    return len(rows), left


def _publish(settings: Settings, messages: list[tuple[str, bytes]]) -> None:
    target = settings.broker()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        protocol=mqtt.MQTTv311,
        transport=target.transport,  # type: ignore[arg-type]
    )
    configure_client(client, target)
    try:
        client.connect(target.endpoint.host, target.endpoint.port)
    except OSError as exc:
        raise ServiceUnavailableError(
            f"cannot reach the broker at {target.describe()}: {exc}; start it or fix mqtt.url"
        ) from exc
    client.loop_start()
    try:
        for topic, payload in messages:
            client.publish(topic, payload, qos=1).wait_for_publish(30)
    finally:
        client.disconnect()
        client.loop_stop()
