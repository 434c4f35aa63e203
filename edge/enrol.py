"""Zero-touch enrolment: a new device asks the fleet to join, with only its batch's bootstrap
secret, and leaves with credentials of its own.

1. With the bootstrap client (`claim-<batch>`, allowed nothing but this), the agent sends its
   serial, hardware facts and a password it made for itself, on
   `<fleet root>/enrol/<batch>/<serial>`, and reads the answer to that request (its nonce) on
   `.../reply`: pending (an operator decides; it asks again every `fleet.enrol_retry_s`),
   refused (with the reason; it keeps asking, slowly, in case an operator resets it) or
   approved, with its device id and site.
2. With its own credentials it reports in and receives its provisioning: the confirmation key
   and its password's life. The bootstrap secret is never used again.
"""

from __future__ import annotations

import logging
import os
import queue
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.config import AgentConfig
from edge.credentials import CredentialStore, Identity
from edge.device_facts import hardware_facts, read_serial
from edge.release import running_version
from streetsense.backoff import Backoff
from streetsense.broker import BrokerTarget, configure_client, use_password
from streetsense.broker_reasons import explain
from streetsense.errors import ConfigError, PayloadError
from streetsense.fleet_protocol import (
    EnrolReply,
    EnrolRequest,
    FleetTopics,
    Provision,
    Report,
    bootstrap_username,
)
from streetsense.lifecycle import StopSignal

log = logging.getLogger(__name__)
REFUSED_SLOWDOWN: Final = 8  # a refused device asks this many times less often


def with_identity(config: AgentConfig, store: CredentialStore, identity: Identity) -> AgentConfig:
    """Return the config with the enrolled identity: device ids, user name, confirmation key.

    The password is not in the config: the link asks the store before each connection.
    """
    return replace(
        config,
        device=replace(config.device, site=identity.site, id=identity.device,
                       confirm_key_file=str(store.confirm_key_path)),
        mqtt=replace(config.mqtt, username=identity.username, password_file="",
                     client_id=identity.device),
    )  # fmt: skip


class Enrolment:
    """Enrol this device, or finish an enrolment a restart interrupted."""

    def __init__(
        self,
        config: AgentConfig,
        store: CredentialStore,
        stop: StopSignal,
        on_state: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.stop = stop
        self.on_state = on_state or (lambda _state: None)
        self.topics = FleetTopics(config.fleet.topic_prefix)

    def run(self) -> Identity | None:
        """Return the device's identity once it holds credentials and its key; None if stopped.

        Raises:
            ConfigError: the serial or the bootstrap secret cannot be read.
        """
        self.store.prepare()
        identity = self.store.identity()
        if identity is None:
            self.on_state("asking to enrol")
            identity = self._claim()
            if identity is None:
                return None
        if self.store.confirm_key() is None and not self._provision(identity):
            return None
        return self.store.identity()

    def _claim(self) -> Identity | None:
        fleet = self.config.fleet
        serial = read_serial(fleet)
        if not os.access(fleet.bootstrap_secret_file, os.R_OK):
            raise ConfigError(
                f"setting 'fleet.bootstrap_secret_file' = {fleet.bootstrap_secret_file!r} cannot "
                "be read: the image must carry the batch's secret, readable by the agent"
            )
        password = self.store.enrolment_password()
        target = replace(self.config.broker(), username=bootstrap_username(fleet.batch),
                         password_file=fleet.bootstrap_secret_file)  # fmt: skip
        reply_topic = self.topics.enrol_reply(fleet.batch, serial)
        session = _Session(target, f"enrol-{serial}"[:64], self.config, [reply_topic])
        nonces: set[str] = set()
        wait_s = fleet.enrol_retry_s
        log.info("enrolling serial %s in batch %s", serial, fleet.batch)
        try:
            while not self.stop.stopping:
                if not session.ensure(self.stop):
                    continue
                nonce = secrets.token_hex(16)
                nonces.add(nonce)
                request = EnrolRequest(serial, fleet.batch, password, nonce, hardware_facts(),
                                       running_version(), int(time.time() * 1000))  # fmt: skip
                session.publish(self.topics.enrol(fleet.batch, serial), request.encode())
                reply = self._await_reply(session, nonces, wait_s)
                if reply is None:
                    continue
                if reply.state == "approved":
                    identity = Identity(reply.device, reply.site, reply.username, serial,
                                        fleet.batch)  # fmt: skip
                    self.store.save_identity(identity)
                    log.info("enrolled as %s/%s", reply.site, reply.device)
                    return identity
                self.on_state(f"{reply.state}: {reply.reason}")
                if reply.state == "refused":
                    log.error("enrolment refused: %s", reply.reason)
                    wait_s = fleet.enrol_retry_s * REFUSED_SLOWDOWN
                else:
                    log.info("enrolment pending: %s", reply.reason)
                    wait_s = fleet.enrol_retry_s
                self.stop.wait(wait_s)
        finally:
            session.close()
        return None

    def _await_reply(self, session: _Session, nonces: set[str], wait_s: float) -> EnrolReply | None:
        deadline = time.monotonic() + wait_s
        while not self.stop.stopping:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            message = session.next_message(min(left, 0.5))
            if message is None:
                continue
            try:
                reply = EnrolReply.decode(message[1])
            except PayloadError as exc:
                log.warning("ignoring a malformed enrolment reply: %s", exc)
                continue
            if reply.nonce in nonces:  # an answer to one of our requests, not to another's
                return reply
        return None

    def _provision(self, identity: Identity) -> bool:
        target = replace(self.config.broker(), username=identity.username, password_file="")
        provision_topic = self.topics.device(identity.device, "provision")
        session = _Session(target, identity.device, self.config, [provision_topic],
                           password=self.store.password())  # fmt: skip
        try:
            while not self.stop.stopping:
                if not session.ensure(self.stop):
                    continue
                report = Report(running_version(), identity.generation, want_key=True,
                                sent_at_ms=int(time.time() * 1000))  # fmt: skip
                session.publish(self.topics.device(identity.device, "report"), report.encode())
                message = session.next_message(self.config.fleet.enrol_retry_s)
                if message is None:
                    continue
                try:
                    provision = Provision.decode(message[1])
                except PayloadError as exc:
                    log.warning("ignoring a malformed provisioning message: %s", exc)
                    continue
                if provision.confirm_key and provision.device == identity.device:
                    self.store.save_confirm_key(provision.confirm_key)
                    self.store.save_identity(provisioned(identity, provision))
                    log.info("provisioned: confirmation key stored")
                    return True
        finally:
            session.close()
        return False


def provisioned(identity: Identity, provision: Provision) -> Identity:
    """Return the identity with what a provisioning message says of it."""
    return replace(identity, site=provision.site, generation=provision.generation,
                   expires_at_ms=provision.expires_at_ms,
                   rotate_after_ms=provision.rotate_after_ms)  # fmt: skip


class _Session:
    """A short-lived paho connection (reconnecting by itself) that queues what it receives."""

    def __init__(
        self,
        target: BrokerTarget,
        client_id: str,
        config: AgentConfig,
        subscriptions: list[str],
        password: str | None = None,
    ) -> None:
        self.target = target
        self.subscriptions = subscriptions
        self.backoff = Backoff(config.mqtt.backoff_min_s, config.mqtt.backoff_max_s)
        self.timeout_s = config.mqtt.connect_timeout_s
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.connected = threading.Event()
        self.refused = ""
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id,
            protocol=mqtt.MQTTv5 if target.v5 else mqtt.MQTTv311,
            transport=target.transport,  # type: ignore[arg-type]
        )  # fmt: skip
        configure_client(self.client, target)
        if password is not None:
            use_password(self.client, target, password)
        self.client.connect_timeout = config.mqtt.connect_timeout_s
        low, high = max(1, int(config.mqtt.backoff_min_s)), max(1, int(config.mqtt.backoff_max_s))
        self.client.reconnect_delay_set(low, high)
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda _c, _u, m: self.messages.put((m.topic, bytes(m.payload)))
        self.client.on_disconnect = lambda *_args: self.connected.clear()
        self.started = False

    def ensure(self, stop: StopSignal) -> bool:
        """Be connected and subscribed; False (after a back-off wait) when not yet."""
        if not self.started:
            endpoint = self.target.endpoint
            self.client.connect_async(endpoint.host, endpoint.port, keepalive=30)
            self.client.loop_start()
            self.started = True
        if self.connected.wait(self.timeout_s):
            self.backoff.reset()
            return True
        why = self.refused or f"no connection to {self.target.describe()} yet"
        log.warning("cannot enrol now: %s", why)
        stop.wait(self.backoff.next_delay())
        return False

    def publish(self, topic: str, payload: bytes) -> None:
        """Publish at QoS 1 (the answer tells whether it arrived)."""
        self.client.publish(topic, payload, qos=1)

    def next_message(self, timeout: float) -> tuple[str, bytes] | None:
        """Return the next message within `timeout` s, or None."""
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        """Disconnect and stop the network thread."""
        if self.started:
            self.client.disconnect()
            self.client.loop_stop()

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if reason.is_failure:
            self.refused = f"the broker refused the connection: {explain(reason.value)}"
            return
        self.refused = ""
        for topic in self.subscriptions:
            client.subscribe(topic, qos=1)
        self.connected.set()
