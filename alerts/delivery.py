"""Deliver the outbox: each channel strictly in order, one process at a time, retried with
backoff. A channel whose oldest notification fails waits; nothing behind it overtakes it, so a
receiver down for an hour gets every transition once, in order, when it returns."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

import psycopg

from alerts import email, webhook
from alerts.channels import Channel
from alerts.mqtt import Publisher
from alerts.rules import RuleSet
from alerts.webhook import DeliveryError
from store import alerts as store
from streetsense.backoff import full_jitter
from streetsense.config import Settings
from streetsense.errors import ConfigError

log = logging.getLogger(__name__)
PER_PASS: Final = 500
TIMEOUT_S: Final = 10.0


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter, capped so a returning receiver is found soon."""

    first_s: float = 5.0
    most_s: float = 300.0

    def delay(self, attempts: int, rng: random.Random) -> float:
        """Return the wait after `attempts` failures (the count is kept in the outbox)."""
        return full_jitter(attempts, self.first_s, self.most_s, rng)


@dataclass(frozen=True, slots=True)
class Delivered:
    """What one pass did."""

    sent: int = 0
    failed: int = 0
    waiting: int = 0  # channels still in their backoff
    by_channel: dict[str, int] = field(default_factory=dict)  # sent per channel


def deliver(
    conn: psycopg.Connection,
    rules: RuleSet,
    settings: Settings,
    clock: Callable[[], datetime],
    backoff: Backoff = Backoff(),
    rng: random.Random | None = None,
) -> Delivered:
    """Send what each channel has due, in outbox order, on an autocommit connection.

    Each delivery is committed on its own, so a crash repeats at most the one notification
    in flight (receivers drop it by its delivery id).
    """
    rng = rng or random.Random()  # noqa: S311 - jitter, not security
    sent = failed = waiting = 0
    by_channel: dict[str, int] = {}
    publisher: Publisher | None = None
    try:
        for name in store.pending_channels(conn):
            channel = rules.channels.get(name)
            if channel is None:
                log.warning("outbox holds notifications for channel %r, which the rules no "
                            "longer define; add it back to deliver them", name)  # fmt: skip
                continue
            if not store.try_channel_lock(conn, name):
                continue  # another process delivers this channel
            try:
                if channel.type == "mqtt" and publisher is None:
                    publisher = Publisher(settings, TIMEOUT_S)
                s, f, w = _deliver_channel(conn, channel, publisher, clock, backoff, rng)
            finally:
                store.release_channel_lock(conn, name)
            sent, failed, waiting = sent + s, failed + f, waiting + w
            if s:
                by_channel[name] = s
    finally:
        if publisher is not None:
            publisher.close()
    return Delivered(sent, failed, waiting, by_channel)


def _deliver_channel(
    conn: psycopg.Connection,
    channel: Channel,
    publisher: Publisher | None,
    clock: Callable[[], datetime],
    backoff: Backoff,
    rng: random.Random,
) -> tuple[int, int, int]:
    sent = 0
    for item in store.undelivered(conn, channel.name, PER_PASS):
        now = clock()
        if item.next_attempt_at > now:
            return sent, 0, 1
        try:
            note = _send(channel, item, publisher, now)
        except (DeliveryError, ConfigError) as exc:
            retry = now + timedelta(seconds=backoff.delay(item.attempts + 1, rng))
            store.mark_failed(conn, item.outbox_id, str(exc), retry)
            log.warning("alert %d to %s failed (attempt %d), retry at %s: %s",
                        item.outbox_id, channel.name, item.attempts + 1, retry, exc)  # fmt: skip
            return sent, 1, 0
        store.mark_delivered(conn, item.outbox_id, clock(), note)
        sent += 1
    return sent, 0, 0


def _send(
    channel: Channel, item: store.Notification, publisher: Publisher | None, now: datetime
) -> str:
    options = channel.options
    body = json.dumps({"delivery": item.outbox_id, **item.payload}, separators=(",", ":")).encode()
    if channel.type == "webhook":
        secret = webhook.secret_from_env(str(options["secret_env"]))
        timeout = float(options.get("timeout_s", TIMEOUT_S))
        webhook.post(
            str(options["url"]), body, secret, item.outbox_id, int(now.timestamp()), timeout
        )
        return ""
    if channel.type == "email":
        return email.send(options, item.payload, item.outbox_id, TIMEOUT_S)
    if channel.type == "mqtt":
        assert publisher is not None
        publisher.publish(str(options["topic"]), body, int(options.get("qos", 1)))
        return ""
    raise ConfigError(f"channel {channel.name}: unknown type {channel.type}")
