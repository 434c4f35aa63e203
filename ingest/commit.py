"""Commit a batch in one transaction: readings, rejections, quarantine, sequences, device state."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Final

import psycopg

from ingest.batch import Batch
from ingest.classify import AUTO_KIND, Classifier
from ingest.sequences import FIRST_CONTIGUOUS, SequenceState
from store.device_state import upsert_device_state
from store.quarantine import auto_register, known_among, revoked_among, write_quarantine
from store.revisions import write_revisions
from store.rollup_invalidations import is_late, note_late_commit
from store.sequences import SequenceRow, lock_sequences, save_sequences
from store.writes import Conflict, ReadingWriter, Rejection, write_rejections
from streetsense.kinds import KINDS

# Rows refusing conflicting duplicates kept per batch; the rest are summed in one more row.
MAX_CONFLICT_ROWS: Final = 100


@dataclass(slots=True)
class CommitResult:
    """What a committed batch changed."""

    written: int = 0
    revised: int = 0  # stored readings replaced by a higher revision
    # device id -> (site id, contiguous seq) for the acks to publish
    acks: dict[str, tuple[str, int]] = field(default_factory=dict)
    lost: int = 0


def resolve_unknown(
    conn: psycopg.Connection, classifier: Classifier, batch: Batch, auto: bool
) -> None:
    """Look up devices this process does not know; register, accept or quarantine their data.

    Registration commits on its own: a device registered by a batch that then fails is still
    a registered device, and its messages come again.
    """
    if not batch.unresolved:
        return
    ids = {topic.device_id for _, topic in batch.unresolved}
    found = known_among(conn, ids)
    revoked = revoked_among(conn, ids - found.keys())
    if auto:
        new: dict[str, tuple[str, str, str]] = {}
        for _, topic in batch.unresolved:
            stream = topic.channel.stream
            if topic.device_id not in found | revoked and stream is not None:
                new.setdefault(topic.device_id, (topic.device_id, topic.site, AUTO_KIND[stream]))
        with conn.transaction():
            auto_register(conn, list(new.values()))
        found |= {device: site for device, site, _ in new.values()}
    classifier.known |= found
    pending, batch.unresolved = batch.unresolved, []
    for message, topic in pending:
        if topic.device_id in classifier.known:
            classifier.accept(message, topic, batch)
        elif topic.device_id in revoked:
            classifier.revoked(message, topic, batch, revoked[topic.device_id])
        else:
            classifier.quarantine(message, topic, batch)


def commit_batch(
    conn: psycopg.Connection, batch: Batch, payload_cap: int, writer: ReadingWriter
) -> CommitResult:
    """Write everything the batch holds in one transaction and return the acks to publish."""
    result = CommitResult()
    with conn.transaction():
        # Sequence rows first, in device order: two ingest processes sharing a subscription
        # then queue behind each other instead of deadlocking.
        sites = {d: a.site_id for d, a in batch.devices.items() if a.seqs or a.floor is not None}
        locked = lock_sequences(conn, sites, FIRST_CONTIGUOUS)
        conflicts: list[Conflict] = []
        counts = writer.write(conn, batch.rows, conflicts)
        if conflicts:
            batch.rejections += conflict_rejections(batch, conflicts)
        revised = write_revisions(conn, batch.revisions)
        for device_id, new in revised.new.items():
            counts[device_id] = counts.get(device_id, 0) + new
        result.revised = revised.replaced
        write_rejections(conn, batch.rejections, payload_cap)
        write_quarantine(conn, batch.quarantine)
        changed = []
        for device_id, row in locked.items():
            activity = batch.devices[device_id]
            state = SequenceState.from_row(row.contiguous_seq, row.max_seq, row.pending, row.lost)
            before = state.contiguous
            result.lost += state.handle(activity.seqs, activity.floor)
            resent = bool(activity.seqs) and min(activity.seqs) <= before
            if state.contiguous != before or resent:
                # A re-send means the device missed our ack: tell it again.
                result.acks[device_id] = (activity.site_id, state.contiguous)
            changed.append(
                SequenceRow(
                    device_id,
                    activity.site_id,
                    state.contiguous,
                    state.max_seq,
                    state.flat_pending(),
                    state.lost,
                )
            )
        save_sequences(conn, changed)
        upsert_device_state(
            conn, [a.state_update(d, counts.get(d, 0)) for d, a in sorted(batch.devices.items())]
        )
        # Last before COMMIT: a batch held since long before (an outage, a lock) may be below
        # the rollup refresh's receive-time scan; the note makes the refresh look at it.
        earliest = min(
            filter(None, (batch.rows.earliest(), batch.revisions.earliest())), default=None
        )
        if earliest is not None and is_late(min(m.received for m in batch.messages), time.time()):
            note_late_commit(conn, set(batch.rows.per_device) | batch.revisions.devices, earliest)
    result.written = sum(counts.values())
    return result


def conflict_rejections(batch: Batch, conflicts: list[Conflict]) -> list[Rejection]:
    """Refuse, with the reason, the copies of readings whose values disagree with the kept one."""
    rejections = [
        Rejection(
            received_at=datetime.now(UTC),
            topic=_topic_of(batch, conflict),
            reason_code="conflicting_duplicate",
            reason=_conflict_reason(conflict),
            payload=b"",
            device_id=conflict.device_id,
            repeats=conflict.refused,
        )
        for conflict in conflicts[:MAX_CONFLICT_ROWS]
    ]
    batch.reasons["conflicting_duplicate"] += sum(c.refused for c in conflicts)
    if len(conflicts) > MAX_CONFLICT_ROWS:
        rest = conflicts[MAX_CONFLICT_ROWS:]
        rejections.append(
            replace(
                rejections[-1],
                reason=f"{len(rest)} more readings of this batch came with values other than the "
                "one kept; the rows before name some",
                repeats=sum(c.refused for c in rest),
            )
        )
    return rejections


def _conflict_reason(conflict: Conflict) -> str:
    name = f"{conflict.sub_id}/{conflict.kind}" if conflict.sub_id else conflict.kind
    at = conflict.observed_at.isoformat()
    values = (
        f"{conflict.lowest:g}"
        if conflict.lowest == conflict.highest
        else f"{conflict.lowest:g} .. {conflict.highest:g}"
    )
    if conflict.stored is None:
        return (
            f"{name} observed at {at} came {conflict.copies} times with different values "
            f"({values}); the first was stored, the others refused: a device sends one value "
            "per reading (fix its clock resolution or its pack)"
        )
    return (
        f"{name} observed at {at} was stored earlier as {conflict.stored:g} and came again as "
        f"{values}; the stored value stands: a device amends a reading by sending it with a "
        "higher revision ('rev'), and otherwise re-sends the same value"
    )


def _topic_of(batch: Batch, conflict: Conflict) -> str:
    stream = KINDS[conflict.kind].stream.value if conflict.kind in KINDS else ""
    needle, tail = f"/{conflict.device_id}/", f"/{stream}"
    for message in batch.messages:
        if needle in message.topic and message.topic.endswith(tail):
            return message.topic
    return ""
