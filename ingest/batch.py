"""One batch: what a set of messages yielded, aggregated per device, ready to commit."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ingest.inbox import Message
from store.device_state import DeviceStateUpdate
from store.quarantine import QuarantinedMessage
from store.reading_rows import ReadingRows
from store.revisions import Revisions
from store.writes import Rejection
from streetsense.topics import DeviceTopic


@dataclass(slots=True)
class DeviceActivity:
    """What one batch saw of one device."""

    site_id: str
    last_seen: float
    online: bool = True
    online_at: float = 0.0
    status: dict[str, Any] = field(default_factory=dict)
    status_at: datetime | None = None
    seqs: list[int] = field(default_factory=list)
    floor: int | None = None
    rejected: int = 0
    # received minus observed time of the device's newest reading in a message, worst in batch
    lateness: float = float("-inf")

    def saw(self, received: float) -> None:
        """Note a message from the device."""
        self.last_seen = max(self.last_seen, received)

    def heard(self, received: float) -> None:
        """Note a message without an `online` reading: the device is online as of its receipt."""
        if received >= self.online_at:
            self.online, self.online_at = True, received

    def state_update(self, device_id: str, written: int) -> DeviceStateUpdate:
        """Return this activity as a device_state row."""
        return DeviceStateUpdate(
            device_id=device_id,
            site_id=self.site_id,
            last_seen_at=datetime.fromtimestamp(self.last_seen, UTC),
            online=self.online,
            online_at=datetime.fromtimestamp(self.online_at, UTC),
            status=self.status,
            status_at=self.status_at,
            readings=written,
            rejected=self.rejected,
        )


@dataclass(slots=True)
class Batch:
    """Messages taken together; everything here is committed in one transaction."""

    messages: list[Message] = field(default_factory=list)
    rows: ReadingRows = field(default_factory=ReadingRows)
    revisions: Revisions = field(default_factory=Revisions)
    rejections: list[Rejection] = field(default_factory=list)
    quarantine: list[QuarantinedMessage] = field(default_factory=list)
    # Messages of devices not (yet) known to this process; resolved against the database.
    unresolved: list[tuple[Message, DeviceTopic]] = field(default_factory=list)
    devices: dict[str, DeviceActivity] = field(default_factory=dict)
    reasons: Counter[str] = field(default_factory=Counter)
    ignored: Counter[str] = field(default_factory=Counter)

    def activity(self, topic: DeviceTopic, received: float) -> DeviceActivity:
        """Return the device's activity in this batch, created on first use."""
        activity = self.devices.get(topic.device_id)
        if activity is None:
            activity = self.devices[topic.device_id] = DeviceActivity(topic.site, received)
        return activity

    def reject(self, rejection: Rejection) -> None:
        """Keep a rejection and count it by reason."""
        self.rejections.append(rejection)
        self.reasons[rejection.reason_code] += 1
