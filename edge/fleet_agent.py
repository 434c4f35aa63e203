"""The running agent's side of the fleet: reports, provisioning, password rotation.

On every connection the agent reports what it runs; the fleet answers with its provisioning
(identity, password life, the confirmation key when asked). After `rotate_after` the agent
makes a new password, keeps it durably, and sends it; the fleet sets it in the broker, which
drops the old session, and the link comes back with the new one. No reading is at risk: the
buffer keeps everything until ingest confirms it, whatever the link does.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Final

from edge.config import AgentConfig
from edge.confirmations import Confirmations
from edge.credentials import CredentialStore, Identity
from edge.enrol import provisioned
from edge.link import Link
from edge.release import running_version
from edge.updates import Updater
from streetsense.confirm import parse_key
from streetsense.errors import ConfigError, PayloadError
from streetsense.fleet_protocol import FleetTopics, Provision, Report, UpdateReport

log = logging.getLogger(__name__)
ROTATION_RESEND_S: Final = 60.0  # a rotation not taken up by then is asked for again


class FleetAgent:
    """Keep an enrolled agent's credentials current and tell the fleet what it runs."""

    def __init__(
        self, config: AgentConfig, store: CredentialStore, config_version: Callable[[], Any]
    ) -> None:
        identity = store.identity()
        if identity is None:
            raise ConfigError("the device is not enrolled: no identity in fleet.state_dir")
        self.identity: Identity = identity
        self.store = store
        self.config_version = config_version
        self.topics = FleetTopics(config.fleet.topic_prefix)
        device = identity.device
        self.report_topic = self.topics.device(device, "report")
        self.provision_topic = self.topics.device(device, "provision")
        self.command_topic = self.topics.device(device, "command")
        self.extra_topics = [self.provision_topic, self.command_topic]
        self.version = running_version()
        self.updater = Updater(config.fleet.releases_dir, config.fleet.release_key_file,
                               self.topics, self.version, self._send_update)  # fmt: skip
        self.link: Link | None = None
        self.confirmations: Confirmations | None = None
        self.acked: Callable[[], int] = lambda: -1
        self.refusals = 0
        self._lock = threading.Lock()
        self._rotation_sent_at: float | None = None
        self._pending_updates: list[UpdateReport] = []

    def attach(
        self, link: Link, confirmations: Confirmations, acked: Callable[[], int], next_seq: int
    ) -> None:
        """Give the agent's link, confirmations and buffer (made after this object)."""
        self.link = link
        self.confirmations = confirmations
        self.acked = acked
        self.updater.start(next_seq)

    @property
    def restart_requested(self) -> bool:
        """Tell whether a release was kept for trial and the agent must hand over to it."""
        return self.updater.restart

    def password(self) -> str | None:
        """Return the password for the next connection (called by the link's thread)."""
        with self._lock:
            return self.store.for_connect()

    def on_up(self) -> None:
        """The link is up: finish a rotation the new password proved, then report."""
        with self._lock:
            rotated = self.store.connected()
        if rotated:
            self._reload_identity()
            self._rotation_sent_at = None
            log.info("password rotated: generation %d in use", self.identity.generation)
        self.refusals = 0
        self.report()
        if self.updater.subscribed and self.link is not None:
            self.link.subscribe(self.updater.subscribed)  # the retained bundle comes again
        self.updater.flush()

    def on_refused(self) -> None:
        """The broker refused the connection (revoked, expired, or a rotation in between)."""
        self.refusals += 1

    def report(self, update: UpdateReport | None = None) -> bool:
        """Tell the fleet what runs; False when the link is down (sent on the next connect)."""
        if update is not None:
            self._pending_updates.append(update)
        if self.link is None or not self.link.connected.is_set():
            return False
        version = self.config_version()
        updates, self._pending_updates = self._pending_updates, []
        items: list[UpdateReport | None] = [*updates] if updates else [None]
        for item in items:
            message = Report(
                version=self.version,
                generation=self.identity.generation,
                config_version="" if version is None else str(version)[:64],
                want_key=self.store.confirm_key() is None,
                update=item,
                sent_at_ms=int(time.time() * 1000),
            )
            if self.link.publish(self.report_topic, message.encode()) is None:
                self._pending_updates += [u for u in updates if u is not None]
                return False
        return True

    def handles(self, topic: str) -> bool:
        """Tell whether a message on `topic` is the fleet's, for this object."""
        return topic in (self.provision_topic, self.command_topic) or (
            self.updater.release_topic(topic)
        )

    def on_message(self, topic: str, payload: bytes) -> None:
        """Take a provisioning message, a command or the release bundle it named."""
        if topic == self.command_topic:
            self._on_command(payload)
            return
        if self.updater.release_topic(topic):
            if self.link is not None:
                self.link.unsubscribe(topic)
            self.updater.subscribed = ""
            self.updater.on_release(payload)
            return
        if topic != self.provision_topic or not payload:
            return
        try:
            provision = Provision.decode(payload)
        except PayloadError as exc:
            log.warning("ignoring a malformed provisioning message: %s", exc)
            return
        if provision.device != self.identity.device:
            log.warning("ignoring provisioning for %s (this is %s)", provision.device,
                        self.identity.device)  # fmt: skip
            return
        if provision.confirm_key:
            self.store.save_confirm_key(provision.confirm_key)
            if self.confirmations is not None:
                self.confirmations.key = parse_key(provision.confirm_key, "provisioning")
        self.identity = provisioned(self.identity, provision)
        self.store.save_identity(self.identity)

    def _on_command(self, payload: bytes) -> None:
        release = self.updater.on_command(payload)
        if self.updater.subscribed and self.updater.subscribed != release and self.link:
            self.link.unsubscribe(self.updater.subscribed)
        self.updater.subscribed = release or ""
        if release and self.link is not None:
            self.link.subscribe(release)

    def _send_update(self, update: UpdateReport) -> bool:
        """Publish an update's outcome now; False when the link is down (kept on disk)."""
        if self.link is None or not self.link.connected.is_set():
            return False
        message = Report(self.version, self.identity.generation, update=update,
                         sent_at_ms=int(time.time() * 1000))  # fmt: skip
        return self.link.publish(self.report_topic, message.encode()) is not None

    def tick(self) -> None:
        """Confirm a release on trial; start (or ask again for) a password rotation when due."""
        connected = self.link is not None and self.link.connected.is_set()
        self.updater.tick(self.acked, connected)
        if self.link is None or not self.link.connected.is_set():
            return
        due = self.identity.rotate_after_ms and time.time() * 1000 >= self.identity.rotate_after_ms
        pending = self.store.next_password()
        if not due and pending is None:
            return
        waited = self._rotation_sent_at is not None and (
            time.monotonic() - self._rotation_sent_at < ROTATION_RESEND_S
        )
        if waited:
            return
        with self._lock:
            password = self.store.begin_rotation()
        message = Report(self.version, self.identity.generation, rotate_password=password,
                         sent_at_ms=int(time.time() * 1000))  # fmt: skip
        if self.link.publish(self.report_topic, message.encode()) is not None:
            self._rotation_sent_at = time.monotonic()
            log.info("password rotation asked for (generation %d)", self.identity.generation)

    def state(self) -> dict[str, Any]:
        """Return what `streetsense-edge status` shows of the fleet."""
        return {
            "release": self.version,
            "serial": self.identity.serial,
            "generation": self.identity.generation,
            "expires_at_ms": self.identity.expires_at_ms,
            "rotate_after_ms": self.identity.rotate_after_ms,
            "rotating": self.store.next_password() is not None,
            "refusals": self.refusals,
            "update": self.updater.last,
        }

    def _reload_identity(self) -> None:
        identity = self.store.identity()
        if identity is not None:
            self.identity = identity
