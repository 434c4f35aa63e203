"""`streetsense fleet serve`: answer enrolments and reports, carry out queued decisions, drive
rollouts, and expire passwords and batches, until SIGINT/SIGTERM."""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable
from typing import Final

import psycopg

from fleet import intended_config
from fleet.actions import run_queued
from fleet.batches import close_expired
from fleet.context import Fleet
from fleet.credentials import expire
from fleet.enrolment import Enroller
from fleet.link import FleetLink
from fleet.reports import Reports
from fleet.rollouts import Rollouts
from store.db import connect, require_url
from streetsense.config import Settings
from streetsense.errors import ServiceUnavailableError, StreetsenseError
from streetsense.fleet_protocol import FleetTopics
from streetsense.lifecycle import StopSignal
from streetsense.topics import Channel

log = logging.getLogger(__name__)
APPLICATION_NAME: Final = "streetsense-fleet"
EXPIRY_EVERY_S: Final = 10.0
MESSAGES_PER_ROUND: Final = 500


def open_fleet(settings: Settings, name: str = "streetsense-fleet") -> Fleet:
    """Connect to the database and the broker as the fleet service.

    Raises:
        ServiceUnavailableError: either cannot be reached, or refuses us.
        ConfigError: a setting is missing or wrong.
    """
    url = require_url(settings.database)
    conn = connect(url, autocommit=True, timeout_s=settings.database.connect_timeout_s,
                   application_name=APPLICATION_NAME)  # fmt: skip
    fleet_topics = FleetTopics(settings.fleet.topic_prefix)
    configs = f"{settings.mqtt.topic_prefix}/+/+/{Channel.CONFIG.value}"  # intended configs
    try:
        link = FleetLink(
            settings.broker(),
            [fleet_topics.enrol_requests(), fleet_topics.reports(), configs],
            name,
        ).start()
    except BaseException:
        conn.close()
        raise
    return Fleet(settings, conn, link)


class FleetService:
    """The fleet service's loop; `rounds` are the periodic jobs (rollouts add theirs)."""

    def __init__(self, fleet: Fleet, stop: StopSignal) -> None:
        self.fleet = fleet
        self.stop = stop
        self.enroller = Enroller(fleet)
        self.rollouts = Rollouts(fleet)
        self.reports = Reports(fleet, self.rollouts.on_update)
        self.rounds: list[Callable[[], None]] = [self._actions, self.rollouts.step]
        self._expired_at = float("-inf")

    def run(self) -> None:
        """Serve until stopped."""
        log.info("fleet service running (fleet topics under %s)", self.fleet.fleet_topics.root)
        interval = self.fleet.settings.fleet.interval_s
        next_round = time.monotonic()
        while not self.stop.stopping:
            self._messages(max(0.0, next_round - time.monotonic()))
            if time.monotonic() >= next_round:
                next_round = time.monotonic() + interval
                for job in self.rounds:
                    self._guarded(job)
                if time.monotonic() - self._expired_at >= EXPIRY_EVERY_S:
                    self._expired_at = time.monotonic()
                    self._guarded(self._expire)

    def _messages(self, wait_s: float) -> None:
        fleet = self.fleet
        try:
            message = fleet.link.messages.get(timeout=wait_s)
        except queue.Empty:
            return
        for _ in range(MESSAGES_PER_ROUND):
            self._guarded(lambda m=message: self._dispatch(m.topic, m.payload))  # type: ignore[misc]
            try:
                message = fleet.link.messages.get_nowait()
            except queue.Empty:
                return

    def _dispatch(self, topic: str, payload: bytes) -> None:
        if intended_config.is_config(self.fleet, topic):
            intended_config.take(self.fleet, topic, payload)
        elif topic.endswith("/report"):
            self.reports.handle(topic, payload)
        elif not topic.endswith("/reply"):
            self.enroller.handle(topic, payload)

    def _actions(self) -> None:
        while run_queued(self.fleet) is not None:
            pass

    def _expire(self) -> None:
        expire(self.fleet, self.fleet.clock())
        close_expired(self.fleet)

    def _guarded(self, job: Callable[[], object]) -> None:
        # The loop's edge: one failed message or job is logged and the service goes on.
        try:
            job()
        except (StreetsenseError, psycopg.Error) as exc:
            log.error("fleet job failed: %s", exc)
            if isinstance(exc, psycopg.OperationalError | ServiceUnavailableError):
                self._reconnect()

    def _reconnect(self) -> None:
        fleet = self.fleet
        if not fleet.conn.closed:
            return
        while not self.stop.stopping:
            try:
                fleet.conn = connect(require_url(fleet.settings.database), autocommit=True,
                                     application_name=APPLICATION_NAME)  # fmt: skip
                return
            except ServiceUnavailableError as exc:
                log.warning("%s; retrying in 2 s", exc)
                self.stop.wait(2.0)


def serve(settings: Settings, stop: StopSignal) -> None:
    """Run the fleet service until stopped."""
    fleet = open_fleet(settings)
    try:
        FleetService(fleet, stop).run()
    finally:
        fleet.link.stop()
        fleet.conn.close()
