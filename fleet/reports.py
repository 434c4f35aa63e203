"""Devices' reports: what they run, their password rotations, what became of an update
(passed to the rollouts).

A report topic is writable by its own device only (its role), so the device id comes from the
topic; the payload is still checked field by field and bounded. Each report is answered with
the device's provisioning (identity, password life, and its confirmation key when it asks).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from fleet.context import Fleet
from fleet.credentials import provision, rotate
from store import fleet_devices
from streetsense.errors import PayloadError, TopicError
from streetsense.fleet_protocol import Report, UpdateReport
from streetsense.ratelimit import KeyedBuckets

log = logging.getLogger(__name__)
REPORTS_PER_S = 1.0
REPORTS_BURST = 20


class Reports:
    """Take devices' reports; an update report goes to `on_update` (the rollouts)."""

    def __init__(
        self,
        fleet: Fleet,
        on_update: Callable[[str, UpdateReport], None] | None = None,
    ) -> None:
        self.fleet = fleet
        self.on_update = on_update
        self.limiter = KeyedBuckets(REPORTS_PER_S, REPORTS_BURST)
        self.dropped = 0

    def handle(self, topic: str, payload: bytes) -> Report | None:
        """Take one report; return it, or None when it was refused (logged with the reason)."""
        fleet = self.fleet
        try:
            device_id = fleet.fleet_topics.parse_report(topic)
        except TopicError as exc:
            log.warning("report on a bad topic: %s", exc)
            return None
        if not self.limiter.allow(device_id, time.monotonic()):
            self.dropped += 1
            if self.dropped % 100 == 1:
                log.warning("device %s reports too often: %d reports dropped in all",
                            device_id, self.dropped)  # fmt: skip
            return None
        try:
            report = Report.decode(payload)
        except PayloadError as exc:
            log.warning("report of %s refused: %s", device_id, exc)
            return None
        device = fleet_devices.device(fleet.conn, device_id)
        if device is None or device.revoked_at is not None:
            log.warning("report of %s ignored: not an enrolled device (or revoked)", device_id)
            return None
        fleet_devices.note_report(
            fleet.conn, device_id, report.version, report.config_version, fleet.clock()
        )
        if report.rotate_password:
            device = rotate(fleet, device, report.rotate_password, report.generation)
        if report.update is not None and self.on_update is not None:
            self.on_update(device_id, report.update)
        provision(fleet, device, with_key=report.want_key)
        return report
