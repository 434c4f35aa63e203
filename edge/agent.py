"""The agent's main loop: driver -> processing -> buffer -> sender, plus health and config."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from dataclasses import asdict
from typing import Any

from edge.buffer import Buffer
from edge.clock import ClockGuard
from edge.config import AgentConfig, apply_remote
from edge.confirmations import Confirmations
from edge.drivers import SensorDriver, make_driver
from edge.fleet_agent import FleetAgent
from edge.health import Health, memory_bytes, temperature
from edge.link import Link, LinkEvent
from edge.processing import Processor
from edge.release import RESTART_FOR_UPDATE
from edge.sender import Sender
from edge.state import write_state
from streetsense.errors import ConfigError, ServiceUnavailableError
from streetsense.lifecycle import StopSignal
from streetsense.readings import Reading, encode_readings, epoch_to_datetime
from streetsense.topics import Channel, Topics

log = logging.getLogger(__name__)
TICK_S = 0.2
STATE_EVERY_S = 0.5


class Agent:
    """One edge device: reads its sensors, buffers every reading, forwards them until confirmed."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        driver: SensorDriver | None = None,
        stop: StopSignal | None = None,
        fleet: FleetAgent | None = None,
    ) -> None:
        self.config = config
        self.fleet = fleet
        self.stop = stop or StopSignal()
        self.driver = driver or make_driver(config.driver)
        self.clock = ClockGuard(
            config.valid_after_epoch(), config.clock.max_jump_s, config.clock.settle_s
        )
        self.processor = Processor(
            config.device.id, config.parking, config.traffic, self.clock,
            started_at=self.driver.now(),
        )  # fmt: skip
        self.buffer = Buffer(
            config.buffer.path,
            config.device.id,
            cap_bytes=config.buffer.cap_bytes,
            synchronous=config.buffer.synchronous,
            min_free_bytes=config.buffer.min_free_bytes,
        )
        self.link = Link(
            config,
            extra_topics=fleet.extra_topics if fleet else (),
            password=fleet.password if fleet else None,
        )
        self.confirmations = Confirmations(
            config.device.site, config.device.id, config.confirm_key()
        )
        if fleet is not None:
            fleet.attach(self.link, self.confirmations, lambda: self.buffer.stats().acked,
                         self.buffer.stats().next_seq)  # fmt: skip
        topics = Topics(config.mqtt.topic_prefix)
        self.sender = Sender(self.buffer, self.link, topics, config.device.site, config.buffer)
        self.reply_topic = topics.device(config.device.site, config.device.id, Channel.CONFIG_REPLY)
        self.health = Health()
        self.accepted = 0
        self.config_version: Any = None
        self._last_config: bytes | None = None
        self._heartbeat_at = time.monotonic()
        self._state_at = 0.0
        self._pumped_at = 0.0
        self._link_changes = 0

    def run(self) -> int:
        """Run until stopped; return the exit code."""
        self.link.start()
        log.info("agent %s/%s running", self.config.device.site, self.config.device.id)
        try:
            while not self.stop.stopping:
                self._step()
                if self.fleet is not None and self.fleet.restart_requested:
                    break  # a release waits for its trial: hand over to the launcher
        finally:
            self._write_state(running=False)
            self.link.stop()
            self.driver.close()
            self.buffer.close()
        return RESTART_FOR_UPDATE if self.fleet and self.fleet.restart_requested else 0

    def _step(self) -> None:
        events = self.driver.poll(TICK_S)
        self.clock.sample()
        readings = self.processor.accept(events) + self.processor.tick(self.driver.now())
        try:
            self.buffer.put(readings)
            self.accepted += len(readings)
        except ServiceUnavailableError as exc:
            # The loop's edge: the buffer counted these readings as dropped; keep going.
            log.error("readings not stored: %s", exc)
        try:
            self._drain_link_events()
            if time.monotonic() - self._pumped_at >= TICK_S:
                self._pumped_at = time.monotonic()
                self.sender.pump()
        except (ServiceUnavailableError, sqlite3.Error) as exc:
            log.error("cannot forward the buffer: %s; retrying", exc)
            self.stop.wait(1.0)
        if self.fleet is not None:
            self.fleet.tick()
        now = time.monotonic()
        if now - self._heartbeat_at >= self.config.status.heartbeat_s:
            self._heartbeat_at = now
            self._publish_health()
        if now - self._state_at >= STATE_EVERY_S:
            self._state_at = now
            self._write_state()

    def _drain_link_events(self) -> None:
        while not self.link.events.empty():
            event = self.link.events.get_nowait()
            self._on_link_event(event)

    def _on_link_event(self, event: LinkEvent) -> None:
        if event.what == "up":
            self._link_changes += 1
            self.sender.on_up()
            self._heartbeat_at = 0.0  # announce health at once
            if self.fleet is not None:
                self.fleet.on_up()
        elif event.what == "down":
            self._link_changes += 1
            self.sender.on_down()
        elif event.what == "puback":
            self.sender.on_puback(event.mid, event.ok)
        elif event.what == "refused":
            if self.fleet is not None:
                self.fleet.on_refused()
        elif self.fleet is not None and self.fleet.handles(event.topic):
            self.fleet.on_message(event.topic, event.payload)
        elif event.topic == self.link.ack_topic:
            self._on_ack(event.payload)
        elif event.topic == self.link.config_topic:
            self._on_remote_config(event.payload)

    def _on_ack(self, payload: bytes) -> None:
        if not payload:
            return  # the retained ack cleared
        ack = self.confirmations.verify(payload)
        if ack is not None:
            self.sender.on_ack(ack.seq)

    def _on_remote_config(self, payload: bytes) -> None:
        if not payload or payload == self._last_config:
            return  # cleared, or the same retained document redelivered on reconnect
        self._last_config = payload
        old = self.config
        version: Any = None
        try:
            document = json.loads(payload)
            if not isinstance(document, dict):
                raise ConfigError("the remote config must be a JSON object")
            version = document.get("version")
            self._apply(apply_remote(old, document))
        except (ValueError, ConfigError) as exc:
            self._apply(old)  # roll back whatever part was applied
            log.error("remote config %r rejected, keeping the current one: %s", version, exc)
            self._reply(False, version, str(exc))
            return
        self.config_version = version
        log.info("remote config %r applied", version)
        self._reply(True, version, None)
        if self.fleet is not None:
            self.fleet.report()  # the fleet view shows the config in force at once

    def _apply(self, config: AgentConfig) -> None:
        self.config = config
        self.processor.reconfigure(config.parking, config.traffic)
        self.sender.settings = config.buffer

    def _reply(self, applied: bool, version: Any, error: str | None) -> None:
        body = json.dumps({"applied": applied, "version": version, "error": error}).encode()
        if self.link.publish(self.reply_topic, body) is None:
            log.warning("config reply not sent: link down")

    def _publish_health(self) -> None:
        stats = self.buffer.stats()
        now = time.time()
        values = {
            "uptime": self.health.uptime(),
            "buffer_depth": float(stats.depth),
            "buffer_dropped": float(stats.dropped),
            "buffer_oldest_age": 0.0
            if stats.oldest_ms is None
            else max(0.0, now - stats.oldest_ms / 1000),
            "cpu": self.health.cpu_percent(),
            "memory": memory_bytes(),
        }
        if self.sender.latency_s is not None:
            values["publish_latency"] = self.sender.latency_s
        traffic = self.processor.traffic
        if traffic.lanes:  # a traffic counter: how many detections came late, and were lost
            values["late_detections"] = float(traffic.late)
            values["late_dropped"] = float(traffic.dropped)
        if self.confirmations.refused:
            values["acks_refused"] = float(self.confirmations.refused)
        celsius = temperature()
        if celsius is not None:
            values["temperature"] = celsius
        moment = epoch_to_datetime(round(now * 1000) / 1000)
        suspect = self.clock.suspect(now)
        readings = [
            Reading(self.config.device.id, kind, moment, round(value, 3), clock_suspect=suspect)
            for kind, value in values.items()
        ]
        # Health describes now: it is sent when the link is up and never buffered.
        self.link.publish(self.link.status_topic, encode_readings(readings))

    def _write_state(self, *, running: bool = True) -> None:
        stats = self.buffer.stats()
        state = {
            "pid": os.getpid(),
            "running": running,
            "updated_at": time.time(),
            "site": self.config.device.site,
            "device": self.config.device.id,
            "link": "up" if self.link.connected.is_set() else "down",
            "link_error": self.link.last_error,
            "broker": self.link.node,
            "link_changes": self._link_changes,
            "connected_since": self.link.connected_since,
            "buffer_cap_bytes": self.config.buffer.cap_bytes,
            "buffer_depth": stats.depth,
            "buffer_bytes": stats.bytes,
            "buffer_dropped": stats.dropped,
            "oldest_ms": stats.oldest_ms,
            "oldest_unsent_ms": stats.oldest_unsent_ms,
            "first_seq": stats.first_seq,
            "seq_floor": self.buffer.seq_floor(),
            "next_seq": stats.next_seq,
            "acked": stats.acked,
            "confirm_key": self.confirmations.key is not None,
            "acks_refused": self.confirmations.refused,
            "last_ack_at_ms": self.confirmations.last_at_ms,
            "accepted": self.accepted,
            "published": self.sender.published,
            "resent": self.sender.resent,
            "last_publish": self.sender.last_publish,
            "rejected_events": self.processor.rejected,
            "late_vehicles": self.processor.traffic.late,
            "late_dropped": self.processor.traffic.dropped,
            "clock_suspect": not self.clock.synchronised,
            "config_version": self.config_version,
            "fleet": None if self.fleet is None else self.fleet.state(),
            "tunables": {
                k: asdict(getattr(self.config, k)) for k in ("parking", "traffic", "buffer")
            },
        }
        try:
            write_state(self.config.state_path, state)
        except OSError as exc:
            log.warning("cannot write the state file %s: %s", self.config.state_path, exc)
