"""Publish the buffer: live readings at once, the backlog in order at a set rate, re-sends.

Live readings (accepted since the link came up) go out every pass. The backlog (what piled up
while the link was down, and re-sends) drains oldest first through a token bucket of
`buffer.drain_rate` readings per second and only while the broker keeps up, so a long outage
never starves live data. Readings leave the buffer on ingest's `.../ack`, or in the
demonstration mode `confirm = "broker"` on the broker's PUBACK.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from edge.buffer import Buffer, stream_of
from edge.config import BufferSection
from edge.link import Link
from streetsense.ratelimit import TokenBucket
from streetsense.readings import Reading, encode_readings
from streetsense.topics import Channel, Topics

log = logging.getLogger(__name__)
MAX_RESEND_BACKOFF = 16  # at most this many timeouts between re-sends while nothing is confirmed


@dataclass(slots=True)
class _Pack:
    first: int
    last: int
    seqs: list[int]
    sent_at: float


class Sender:
    """Move readings from the buffer to the broker and confirmations back into the buffer."""

    def __init__(
        self, buffer: Buffer, link: Link, topics: Topics, site: str, settings: BufferSection
    ) -> None:
        self.buffer = buffer
        self.link = link
        self.settings = settings
        self._topics = {
            channel.value: topics.device(site, buffer.device_id, channel)
            for channel in (Channel.PARKING, Channel.TRAFFIC, Channel.LIGHT, Channel.STATUS)
        }
        self._inflight: dict[int, _Pack] = {}
        self._live_above = buffer.stats().next_seq - 1
        # backlog readings may go out at `drain_rate`, starting from an empty bucket
        self._drain = TokenBucket(settings.drain_rate, settings.drain_rate, 0.0, time.monotonic())
        self._progress_at = time.monotonic()
        self._resend_factor = 1
        self.last_publish: float | None = None
        self.latency_s: float | None = None
        self.published = 0
        self.resent = 0

    def on_up(self) -> None:
        """Re-send everything unconfirmed (a broker may have lost it); newer is live."""
        self._inflight.clear()
        rewound = self.buffer.rewind(int(time.time() * 1000) + 1)
        self._live_above = self.buffer.stats().next_seq - 1
        if rewound:
            log.info("link up: %d unconfirmed readings queued to be sent again", rewound)

    def on_down(self) -> None:
        """Forget what was in flight; it is re-sent on the next connection."""
        self._inflight.clear()

    def on_puback(self, mid: int, ok: bool) -> None:
        """Note the broker's acknowledgement of one pack."""
        pack = self._inflight.pop(mid, None)
        if pack is None:
            return
        if not ok:
            log.error("the broker refused pack %d-%d (not authorised?)", pack.first, pack.last)
        elif self.settings.confirm == "broker":
            # Demonstration only: a broker that dies now loses what it acknowledged.
            self.buffer.forget(pack.seqs)
            self._note_progress(pack.sent_at)

    def on_ack(self, upto: int) -> None:
        """Free what ingest confirmed stored (everything up to `upto`)."""
        before = self.buffer.stats().acked
        deleted = self.buffer.ack(upto)
        if upto > before:
            self._note_progress(None)
        log.debug("ack %d: %d readings freed", upto, deleted)

    def _note_progress(self, sent_at: float | None) -> None:
        self._progress_at = time.monotonic()
        self._resend_factor = 1
        if sent_at is not None:
            self.latency_s = time.monotonic() - sent_at

    def pump(self) -> None:
        """Publish what is due: live first, then backlog within the rate; re-send when stale."""
        if not self.link.connected.is_set():
            return
        self._resend_if_stale()
        half = max(1, self.settings.max_inflight // 2)
        while len(self._inflight) < self.settings.max_inflight:
            live = self.buffer.unsent(self.settings.pack_max_readings, above=self._live_above)
            if not live or not self._publish(live):
                break
        tokens = self._refill()
        while len(self._inflight) < half and tokens >= 1:
            count = min(self.settings.pack_max_readings, int(tokens))
            backlog = self.buffer.unsent(count, upto=self._live_above)
            if not backlog or not self._publish(backlog):
                break
            self._drain.tokens = tokens = tokens - len(backlog)

    def _refill(self) -> float:
        # remote configuration may have changed the rate or the pack size since the last call
        self._drain.rate = self.settings.drain_rate
        self._drain.burst = max(self.settings.drain_rate, float(self.settings.pack_max_readings))
        return self._drain.refill(time.monotonic())

    def _publish(self, readings: list[Reading]) -> bool:
        now_ms = int(time.time() * 1000)
        floor = self.buffer.seq_floor()
        for stream, group in _by_stream(readings):
            payload = encode_readings(group, seq_floor=floor)
            mid = self.link.publish(self._topics[stream], payload)
            if mid is None:
                return False
            first, last = group[0].seq or 0, group[-1].seq or 0
            seqs = [r.seq for r in group if r.seq is not None]
            self._inflight[mid] = _Pack(first, last, seqs, time.monotonic())
        first, last = readings[0].seq or 0, readings[-1].seq or 0
        self.buffer.mark_sent(first, last, now_ms)
        self.last_publish = time.time()
        self.published += len(readings)
        return True

    def _resend_if_stale(self) -> None:
        oldest = self.buffer.oldest_sent_ms()
        if oldest is None:
            self._progress_at = time.monotonic()
            return
        timeout = self.settings.resend_timeout_s * self._resend_factor
        if time.monotonic() - self._progress_at < timeout:
            return
        cutoff = int((time.time() - timeout) * 1000)
        if oldest >= cutoff:
            return
        count = self.buffer.rewind(cutoff)
        self.resent += count
        # Nothing confirmed for a whole timeout: wait longer next time (ingest may be down).
        self._resend_factor = min(MAX_RESEND_BACKOFF, self._resend_factor * 2)
        self._progress_at = time.monotonic()
        log.warning("no confirmation for %.0f s: sending %d readings again", timeout, count)


def _by_stream(readings: list[Reading]) -> list[tuple[str, list[Reading]]]:
    groups: dict[str, list[Reading]] = {}
    for reading in readings:
        groups.setdefault(stream_of(reading.kind), []).append(reading)
    return list(groups.items())
