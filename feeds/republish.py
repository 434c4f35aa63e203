"""Republish lot changes as retained MQTT messages on `<prefix>/feeds/parking/<lot>`.

With several brokers in `mqtt.url` (a cluster's nodes), each reconnect goes to the next node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Final

import aiomqtt
import orjson

from feeds import formats
from feeds.engine import ChangeEvent, FeedEngine
from streetsense.backoff import Backoff
from streetsense.broker import Endpoint, Failover
from streetsense.config import Settings
from streetsense.topics import Topics

log = logging.getLogger(__name__)
CONCURRENT_PUBLISHES: Final = 10  # aiomqtt warns above ten calls in flight
_PROTOCOLS: Final = {"5": aiomqtt.ProtocolVersion.V5, "3.1.1": aiomqtt.ProtocolVersion.V311}


def client_options(settings: Settings, endpoint: Endpoint | None = None) -> dict[str, object]:
    """Return aiomqtt.Client arguments from the settings (the kernel's reading of mqtt.url).

    Args:
        settings: the settings.
        endpoint: the broker node to connect to (default: the first of mqtt.url).

    Raises:
        ConfigError: mqtt.url or the TLS and password files are wrong; names the setting.
    """
    target = settings.broker()
    endpoint = endpoint or target.endpoint
    base_id = settings.mqtt.client_id or "streetsense"
    options: dict[str, object] = {
        "hostname": endpoint.host,
        "port": endpoint.port,
        "username": target.username or None,
        "password": target.password() if target.username else None,
        "identifier": f"{base_id}-feeds-{random.getrandbits(32):08x}",
        "protocol": _PROTOCOLS[target.protocol],
        "keepalive": settings.mqtt.keepalive_s,
        "tls_context": target.ssl_context(),
        "transport": target.transport,
    }
    if target.transport == "websockets":
        options["websocket_path"] = target.websocket_path
    return options


class Republisher:
    """Keeps the retained per-lot topics equal to the feed; reconnects with backoff."""

    def __init__(self, settings: Settings, engine: FeedEngine) -> None:
        self.settings = settings
        self.engine = engine
        self.topics = Topics(settings.mqtt.topic_prefix)
        self.connected = False
        self._pending: dict[str, bytes] = {}
        self._published: set[str] = set()
        self._wake = asyncio.Event()
        engine.add_listener(self._on_events)

    def _on_events(self, events: list[ChangeEvent]) -> None:
        # Only the newest state of a lot matters to a retained topic: coalesce per lot.
        for event in events:
            self._pending[event.lot.id] = _payload(event)
        # A lot gone from the registry: an empty retained message clears its topic.
        for lot in self._published - self.engine.snapshot.lot_index.keys():
            self._pending[lot] = b""
        self._published = set(self.engine.snapshot.lot_index)
        if self._pending:
            self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until `stop` is set; after each (re)connect every lot is published again."""
        options = client_options(self.settings)
        failover = Failover(self.settings.broker(), str(options["identifier"]))
        backoff = Backoff(1.0, 30.0)
        while not stop.is_set():
            # every attempt after the first follows a failure: the next node of a cluster
            endpoint = failover.next_attempt()
            options.update(hostname=endpoint.host, port=endpoint.port)
            where = failover.where()
            try:
                async with aiomqtt.Client(**options) as client:  # type: ignore[arg-type]
                    self.connected = True
                    backoff.reset()
                    log.info("feeds republishing to MQTT at %s", where)
                    await self._publish_all(client)
                    await self._drain_until(client, stop)
            except aiomqtt.MqttError as exc:
                delay = backoff.next_delay()
                log.warning(
                    "feeds MQTT connection to %s lost (retrying in %.1f s): %s", where, delay, exc
                )
            else:
                delay = 0.0
            self.connected = False
            if stop.is_set():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)

    async def _publish_all(self, client: aiomqtt.Client) -> None:
        await self.engine.ready.wait()
        last = self.engine.last_event_id
        for lot in self.engine.snapshot.lots:
            self._pending.setdefault(lot.id, _payload(ChangeEvent(last, lot)))
        self._published = set(self.engine.snapshot.lot_index)
        self._wake.set()

    async def _drain_until(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        while not stop.is_set():
            waiter = asyncio.ensure_future(self._wake.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            stopper.cancel()
            self._wake.clear()
            batch, self._pending = self._pending, {}
            try:
                await self._send(client, batch)
            except aiomqtt.MqttError:
                # Not sent: keep what is not superseded meanwhile, for the next connection.
                self._pending = {**batch, **self._pending}
                raise

    async def _send(self, client: aiomqtt.Client, batch: dict[str, bytes]) -> None:
        items = list(batch.items())
        for start in range(0, len(items), CONCURRENT_PUBLISHES):
            chunk = items[start : start + CONCURRENT_PUBLISHES]
            await asyncio.gather(
                *(
                    client.publish(self.topics.feed_parking(lot), body, qos=1, retain=True)
                    for lot, body in chunk
                )
            )


def _payload(event: ChangeEvent) -> bytes:
    document = formats.lot_dict(event.lot)
    document["event_id"] = event.id
    return orjson.dumps(document)
