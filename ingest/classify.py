"""Turn MQTT messages into readings, rejections and quarantine entries; validate everything."""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Final

from ingest.batch import Batch, DeviceActivity
from ingest.fastdecode import fast_rows
from ingest.inbox import Message
from ingest.quarantine_gate import QuarantineGate
from store.quarantine import QuarantinedMessage
from store.reading_rows import epoch_us
from store.registry_changes import LotCapacity
from store.writes import Rejection
from streetsense.config import IngestSettings
from streetsense.errors import PayloadError, TopicError
from streetsense.kinds import Stream
from streetsense.ratelimit import KeyedBuckets
from streetsense.readings import Interpretation, Reading, decode_readings
from streetsense.topics import Channel, DeviceTopic, FeedTopic, Topics

log = logging.getLogger(__name__)
# Per-record rejection rows kept per message; the rest are summarised in one row.
MAX_RECORD_ROWS: Final = 100
_TOPIC_CACHE_SIZE: Final = 200_000
# Device kind recorded when a device is registered on first sight, by its first stream.
AUTO_KIND: Final = {
    Stream.PARKING: "parking",
    Stream.TRAFFIC: "traffic",
    Stream.LIGHT: "light",
    Stream.STATUS: "unknown",
}
_STREAMS: Final = {c: c.stream for c in Channel if c.stream is not None}
_FIX_PAYLOAD: Final = (
    "; send one SenML pack (RFC 8428, JSON or CBOR) per message, see docs/protocol.md"
)


class Classifier:
    """Validate messages into a batch; keeps the per-process caches (topics, known devices)."""

    def __init__(
        self,
        settings: IngestSettings,
        topics: Topics,
        known: dict[str, str],
        gate: QuarantineGate | None = None,
    ) -> None:
        self.settings = settings
        self.topics = topics
        self.known = known  # device id -> registered site
        # Registered spot sensors by device; readings of others are refused unless devices
        # register themselves (ingest.auto_register: a pilot trusts what devices say).
        self.spots: dict[str, frozenset[str]] = {}
        self.spot_allowed = None if settings.auto_register else self._spot_allowed
        # The lot each device counts for, with its capacity: a count far beyond it is refused.
        self.capacities: dict[str, LotCapacity] = {}
        self.gate = gate or QuarantineGate(
            settings.quarantine_devices_per_site, settings.quarantine_max_bytes
        )
        self.limiter = KeyedBuckets(settings.device_rate_per_s, settings.device_burst)
        self._topic_cache: dict[str, DeviceTopic | FeedTopic] = {}
        # Record refusals of the message in hand past MAX_RECORD_ROWS, by reason code.
        self._overflow: Counter[str] = Counter()

    def add(self, message: Message, batch: Batch) -> None:
        """Classify one message into the batch (unknown devices wait in batch.unresolved)."""
        batch.messages.append(message)
        try:
            parsed = self._parse(message.topic)
        except TopicError as exc:
            batch.reject(
                self._rejection(
                    message,
                    "bad_topic",
                    f"{exc}; publish on {self.topics.prefix}/<site>/<device_id>/<stream>",
                )
            )
            return
        if isinstance(parsed, FeedTopic) or parsed.channel not in _STREAMS:
            batch.ignored["control"] += 1  # our own feeds and control channels: not data
            return
        if message.retain:
            # Sent again because we subscribed, not because the device spoke now (docs/ingest.md).
            batch.ignored["retained"] += 1
            return
        if parsed.device_id not in self.known:
            batch.unresolved.append((message, parsed))
            return
        self.accept(message, parsed, batch)

    def quarantine(self, message: Message, topic: DeviceTopic, batch: Batch) -> None:
        """Keep a whole message of an unknown device, to replay once it is registered.

        Within the bounds a known device has (size, rate) and quarantine's own (ids per site,
        bytes in all); a message outside them is refused with the reason.
        """
        refusal = self._quarantine_refusal(message, topic)
        if refusal is not None:
            code, reason = refusal
            # No device id: invented ids must not each get rows of their own (ingest.refusals
            # sums refusals per device); the topic and the reason name the sender.
            batch.reject(self._rejection(message, code, reason))
            return
        batch.quarantine.append(
            QuarantinedMessage(
                received_at=datetime.fromtimestamp(message.received, UTC),
                topic=message.topic,
                site_id=topic.site,
                device_id=topic.device_id,
                reason=f"device '{topic.device_id}' is not in the registry; add it to the "
                "registry file and run `streetsense registry load`, or set "
                "ingest.auto_register for pilots",
                payload=message.payload,
            )
        )
        batch.reasons["unknown_device"] += 1

    def revoked(self, message: Message, topic: DeviceTopic, batch: Batch, how: str) -> None:
        """Refuse a whole message of a device the fleet revoked (kept, with who and why)."""
        batch.reject(
            self._rejection(
                message,
                "revoked",
                f"device '{topic.device_id}' was revoked {how}; its messages are refused "
                "(streetsense fleet reset <serial> lets it enrol again)",
                topic.device_id,
            )
        )

    def _quarantine_refusal(self, message: Message, topic: DeviceTopic) -> tuple[str, str] | None:
        size = len(message.payload)
        settings = self.settings
        if size > settings.max_payload_bytes:
            return "too_large", (
                f"payload is {size} bytes, more than ingest.max_payload_bytes = "
                f"{settings.max_payload_bytes} (device '{topic.device_id}' is unknown: it "
                "would have been quarantined); split it into smaller packs"
            )
        if not self.limiter.allow(topic.device_id, message.received):
            return "rate_limited", (
                f"unknown device '{topic.device_id}' sends faster than ingest.device_rate_per_s "
                f"= {settings.device_rate_per_s:g} msg/s (burst {settings.device_burst}); "
                "register it, and slow it down"
            )
        return self.gate.refusal(topic.site, topic.device_id, size)

    def accept(self, message: Message, topic: DeviceTopic, batch: Batch) -> None:
        """Validate a message of a known device into readings and rejections."""
        registered = self.known.get(topic.device_id)
        if registered is not None and registered != topic.site:
            batch.reject(
                self._rejection(
                    message,
                    "wrong_site",
                    f"device '{topic.device_id}' is registered at site '{registered}', not "
                    f"'{topic.site}'; publish on {self.topics.prefix}/{registered}/"
                    f"{topic.device_id}/{topic.channel.value}, or correct the registry. "
                    "Not confirmed: the agent keeps it",
                    topic.device_id,
                )
            )
            return
        activity = batch.activity(topic, message.received)
        activity.saw(message.received)
        settings = self.settings
        size = len(message.payload)
        if size > settings.max_payload_bytes:
            self._reject_whole(
                message,
                topic,
                activity,
                batch,
                "too_large",
                f"payload is {size} bytes, more than ingest.max_payload_bytes = "
                f"{settings.max_payload_bytes}; split it into smaller packs",
            )
            return
        if not self.limiter.allow(topic.device_id, message.received):
            self._reject_whole(
                message,
                topic,
                activity,
                batch,
                "rate_limited",
                f"device '{topic.device_id}' sends faster than "
                f"ingest.device_rate_per_s = {settings.device_rate_per_s:g} msg/s "
                f"(burst {settings.device_burst}); slow the device down or raise "
                "the limit. Not confirmed: the agent re-sends it later",
            )
            return
        stream = _STREAMS[topic.channel]
        received_at = datetime.fromtimestamp(message.received, UTC)
        received_us = epoch_us(received_at)
        window_us = (
            received_us,
            received_us - settings.late_window_s * 1_000_000,
            received_us + settings.future_tolerance_s * 1_000_000,
        )
        fast = fast_rows(
            message.payload, topic.device_id, stream, message.received, window_us,
            self.spot_allowed, self.count_limit,
        )  # fmt: skip
        if fast is not None:
            batch.rows.extend(topic.device_id, fast.encoded, fast.count, fast.earliest_us)
            activity.seqs += fast.seqs
            if fast.seq_floor is not None:
                activity.floor = max(activity.floor or 0, fast.seq_floor)
            activity.heard(message.received)
            activity.lateness = max(activity.lateness, (received_us - fast.newest_us) / 1e6)
            return
        try:
            result = decode_readings(message.payload, topic.device_id, stream, now=message.received)
        except PayloadError as exc:
            self._reject_whole(
                message, topic, activity, batch, "bad_payload", f"{exc}{_FIX_PAYLOAD}"
            )
            return
        except (OverflowError, ValueError, TypeError) as exc:
            # The kernel's decoder lets a few errors through (an integer too large for a
            # float); they are still the payload's fault.
            self._reject_whole(
                message,
                topic,
                activity,
                batch,
                "bad_payload",
                f"the pack holds a value SenML cannot carry ({exc}){_FIX_PAYLOAD}",
            )
            return
        self._interpretation(message, topic, activity, batch, result, received_at)

    def _interpretation(
        self,
        message: Message,
        topic: DeviceTopic,
        activity: DeviceActivity,
        batch: Batch,
        result: Interpretation,
        received_at: datetime,
    ) -> None:
        received = message.received
        # The same window as the fast path's, in whole microseconds from received_at.
        latest = received_at + timedelta(seconds=self.settings.future_tolerance_s)
        earliest = received_at - timedelta(seconds=self.settings.late_window_s)
        if result.seq_floor is not None:
            activity.floor = max(activity.floor or 0, result.seq_floor)
        rows = batch.rows
        seqs = activity.seqs
        newest: datetime | None = None
        said_online = False
        kept = 0
        self._overflow.clear()
        for reading in result.readings:
            observed = reading.observed_at
            refused = self._refused_record(reading, topic)
            if observed > latest or observed < earliest:
                kept = self._reject_time(message, reading, observed > latest, batch, kept)
                activity.rejected += 1
            elif refused is not None:
                kept = self._reject_record(message, reading, refused, batch, kept)
                activity.rejected += 1
                # an untrusted offline notice is no sign of life either
                said_online = said_online or reading.kind == "online"
            elif reading.revision:
                batch.revisions.add(reading, received_at)
            else:
                rows.add_row(
                    (
                        reading.device_id,
                        reading.kind,
                        reading.sub_id or "",
                        observed,
                        received_at,
                        reading.value,
                        reading.seq,
                        reading.clock_suspect,
                    )
                )
                if newest is None or observed > newest:
                    newest = observed
                if topic.channel is Channel.STATUS:
                    said_online = _status(activity, reading) or said_online
            if reading.seq is not None:
                seqs.append(reading.seq)
        kept = self._record_rejections(message, topic, activity, batch, result, kept)
        if not said_online:
            activity.heard(received)
        if newest is not None:
            lateness = received - newest.timestamp()
            activity.lateness = max(activity.lateness, lateness)

    def _record_rejections(
        self,
        message: Message,
        topic: DeviceTopic,
        activity: DeviceActivity,
        batch: Batch,
        result: Interpretation,
        kept: int,
    ) -> int:
        for rejection in result.rejections:
            if rejection.seq is not None:
                activity.seqs.append(rejection.seq)
            activity.rejected += 1
            code = "out_of_range" if "physical range" in rejection.reason else "bad_record"
            if kept < MAX_RECORD_ROWS:
                batch.reject(
                    self._rejection(
                        message,
                        code,
                        rejection.reason,
                        topic.device_id,
                        rejection.index,
                        rejection.seq,
                        with_payload=kept == 0,
                    )
                )
            else:
                batch.reasons[code] += 1
                self._overflow[code] += 1
            kept += 1
        for code, more in sorted(self._overflow.items()):
            # one row stands for the rest of each reason (its `repeats`)
            summary = self._rejection(
                message,
                code,
                f"{more} more records of this message were refused for this reason; "
                "the first rows name them",
                topic.device_id,
                with_payload=False,
            )
            batch.rejections.append(replace(summary, repeats=more))
        return kept

    def _reject_time(
        self, message: Message, reading: Reading, future: bool, batch: Batch, kept: int
    ) -> int:
        if kept >= MAX_RECORD_ROWS:
            code = "future" if future else "too_late"
            batch.reasons[code] += 1
            self._overflow[code] += 1
            return kept + 1
        when = reading.observed_at.isoformat()
        if future:
            code = "future"
            reason = (
                f"{reading.name} observed at {when}, more than ingest.future_tolerance_s = "
                f"{self.settings.future_tolerance_s} s after it was received; fix the "
                "device clock (NTP) or send clock_suspect"
            )
        else:
            code = "too_late"
            reason = (
                f"{reading.name} observed at {when}, older than ingest.late_window_s = "
                f"{self.settings.late_window_s} s; history that old is not ingested, "
                "raise the window to load it"
            )
        batch.reject(
            self._rejection(
                message, code, reason, reading.device_id, None, reading.seq, with_payload=kept == 0
            )
        )
        return kept + 1

    def _refused_record(self, reading: Reading, topic: DeviceTopic) -> tuple[str, str] | None:
        """Return (code, reason) when the registry or the broker's trust refuses a reading."""
        kind = reading.kind
        if kind == "occupied_spaces" and reading.value > self.count_limit(reading.device_id):
            return "beyond_capacity", self._beyond_capacity(reading)
        if kind == "occupied" and self.spot_allowed is not None:
            sensor = reading.sub_id or ""
            if not self.spot_allowed(reading.device_id, sensor):
                return "unknown_spot", (
                    f"spot sensor '{sensor}' of device '{reading.device_id}' is not in the "
                    "registry; add it to the registry's spots (sensor = "
                    f"'{sensor}') and run `streetsense registry load`"
                )
        elif (
            kind == "online"
            and reading.value < 0.5
            and not self.settings.trust_offline_status
            and topic.channel is Channel.STATUS
        ):
            return "untrusted_offline", (
                "online=false is not trusted from this broker: anyone who may publish on the "
                "device's status topic could send it. Set ingest.trust_offline_status = true "
                "where the broker authenticates devices and binds their topics "
                "(deploy/mosquitto/secure.conf)"
            )
        return None

    def count_limit(self, device_id: str) -> float:
        """Return the most occupied_spaces a device may report: its lot's capacity and margin."""
        lot = self.capacities.get(device_id)
        if lot is None:
            return math.inf  # no lot, no capacity to hold it to (the physical range still does)
        return lot.capacity * (1.0 + self.settings.capacity_margin)

    def _beyond_capacity(self, reading: Reading) -> str:
        lot = self.capacities[reading.device_id]
        return (
            f"{reading.value:g} spaces taken is more than lot '{lot.lot_id}' can hold: its "
            f"registered capacity is {lot.capacity}, and ingest.capacity_margin = "
            f"{self.settings.capacity_margin:g} accepts up to "
            f"{self.count_limit(reading.device_id):g}. Recalibrate the counter; or, if the "
            "lot has more spaces, correct its capacity in the registry, run `streetsense "
            "registry load`, then `streetsense ingest --replay-rejected` to send these again"
        )

    def _spot_allowed(self, device_id: str, sensor: str) -> bool:
        # A device's own reading ('') maps to its own lot; a gateway's sub-ids must be spots.
        return not sensor or sensor in self.spots.get(device_id, ())

    def _reject_record(
        self,
        message: Message,
        reading: Reading,
        refused: tuple[str, str],
        batch: Batch,
        kept: int,
    ) -> int:
        code, reason = refused
        if kept >= MAX_RECORD_ROWS:
            batch.reasons[code] += 1
            self._overflow[code] += 1
            return kept + 1
        batch.reject(
            self._rejection(
                message,
                code,
                f"{reading.name}: {reason}",
                reading.device_id,
                None,
                reading.seq,
                with_payload=kept == 0,
            )
        )
        return kept + 1

    def _reject_whole(
        self,
        message: Message,
        topic: DeviceTopic,
        activity: DeviceActivity,
        batch: Batch,
        code: str,
        reason: str,
    ) -> None:
        activity.rejected += 1
        activity.heard(message.received)
        batch.reject(self._rejection(message, code, reason, topic.device_id))

    def _rejection(
        self,
        message: Message,
        code: str,
        reason: str,
        device_id: str | None = None,
        index: int | None = None,
        seq: int | None = None,
        *,
        with_payload: bool = True,
    ) -> Rejection:
        return Rejection(
            received_at=datetime.fromtimestamp(message.received, UTC),
            topic=message.topic,
            reason_code=code,
            reason=reason,
            # One copy of a message's payload is enough; its other rejected records point at it.
            payload=message.payload if with_payload else b"",
            device_id=device_id,
            record_index=index,
            seq=seq,
        )

    def _parse(self, topic: str) -> DeviceTopic | FeedTopic:
        parsed = self._topic_cache.get(topic)
        if parsed is None:
            parsed = self.topics.parse(topic)
            if len(self._topic_cache) >= _TOPIC_CACHE_SIZE:
                self._topic_cache.clear()
            self._topic_cache[topic] = parsed
        return parsed


def _status(activity: DeviceActivity, reading: Reading) -> bool:
    """Fold a status reading into the activity; True when it was an `online` reading."""
    observed = reading.observed_at
    if reading.kind == "online":
        moment = observed.timestamp()
        if moment >= activity.online_at:
            activity.online, activity.online_at = reading.value >= 0.5, moment
        return True
    if activity.status_at is None or observed >= activity.status_at:
        activity.status[reading.kind] = reading.value
        activity.status_at = observed
    else:
        activity.status.setdefault(reading.kind, reading.value)
    return False
