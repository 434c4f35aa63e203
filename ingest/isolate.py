"""Poison isolation: a message ingest cannot classify or store is kept as a rejection.

One bad message must not stop a city's ingest. A message whose classification raises (a bug in
streetsense hit by an odd payload) and a batch the database refuses for a reason other than an
outage (a constraint, a value it cannot hold, a bug in our commit code) are narrowed down to
the messages at fault; those are kept in rejected_messages and acknowledged, everything else is
stored as usual, in message order (docs/ingest.md, "Poison messages").
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Final, TypeAlias

import psycopg

from ingest.batch import Batch
from ingest.classify import Classifier
from ingest.inbox import Message
from store.reading_rows import ReadingRows
from store.revisions import Revisions
from store.writes import Rejection
from streetsense.errors import ServiceUnavailableError
from streetsense.topics import DeviceTopic, Topics

log = logging.getLogger(__name__)
# The database is away, not refusing: retried with backoff, the messages stay unacknowledged.
# Waited out, never blamed on a message: the database is away, or is not the one this release
# expects (class 42: a missing table or column, a revoked privilege after a bad deploy),
# which no message causes and every message would meet.
OUTAGES: Final = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    psycopg.ProgrammingError,
    ServiceUnavailableError,
)
STORE_REFUSED: Final = "store_refused"
INGEST_ERROR: Final = "ingest_error"


@dataclass(slots=True)
class Refusal:
    """Why messages could not be stored together."""

    error: Exception
    # Their classification; None when classifying them raised.
    batch: Batch | None


# Classify and commit messages as one batch and acknowledge them: True when stored, False when
# stopped first (they stay unacknowledged), a Refusal when refused.
Attempt: TypeAlias = Callable[[list[Message]], "bool | Refusal"]
# Keep one refused message as a rejection and acknowledge it: False when stopped first.
Keep: TypeAlias = Callable[[Message, Refusal], bool]


def unlimited(classifier: Classifier) -> Classifier:
    """Return the classifier without its rate limit, sharing its topics and known devices.

    Messages classified a second time (a batch rebuilt or split) were rate-limited once already.
    """
    settings = replace(classifier.settings, device_rate_per_s=0.0)  # 0: no rate limit
    again = Classifier(settings, classifier.topics, classifier.known, classifier.gate)
    again.spots = classifier.spots
    again.capacities = classifier.capacities
    return again


def classify(classifier: Classifier, again: Classifier, messages: list[Message]) -> list[Batch]:
    """Classify messages into batches in order; a message whose classification raises is rejected.

    Args:
        classifier: the classifier of newly received messages.
        again: the same without the rate limit (see unlimited), for messages classified twice.
        messages: the messages, in the order received.

    Returns:
        One batch, or more when a classification raised; each message is in exactly one of them.
    """
    batches: list[Batch] = []
    rest = messages
    while rest:
        batch = Batch()
        failure = _classify_until_failure(classifier, rest, batch)
        if failure is None:
            batches.append(batch)
            break
        index, error = failure
        # The failed add may have left part of its message in the batch (readings, seqs, the
        # device's last_seen or status) and cannot be undone. A scratch Batch per message
        # would cost every message ~15% more classification time, and device activity does
        # not merge exactly; so only on a failure the messages before it are classified again
        # into fresh batches, without the rate limit (a message limited the first time is
        # accepted now: limiting twice would refuse good ones), and the messages after it
        # start a batch of their own: each is classified at most twice however many fail.
        batches.extend(classify(again, again, rest[:index]))
        failed = rest[index]
        log.error(
            "classifying the message on %s failed; kept in rejected_messages as %s",
            failed.topic,
            INGEST_ERROR,
            exc_info=error,
        )
        if not batches:
            batches.append(Batch())
        batches[-1].messages.append(failed)  # acknowledged once its rejection is committed
        batches[-1].reject(bug_rejection(failed, error, classifier.topics))
        rest = rest[index + 1 :]
    return batches


def _classify_until_failure(
    classifier: Classifier, messages: list[Message], batch: Batch
) -> tuple[int, Exception] | None:
    """Classify messages into the batch; return the index and error of the first that raised."""
    for index, message in enumerate(messages):
        try:
            classifier.add(message, batch)
        except Exception as exc:  # the loop's edge: one odd payload must not stop ingest
            return index, exc
    return None


def isolate(messages: list[Message], refusal: Refusal, attempt: Attempt, keep: Keep) -> bool:
    """Store refused messages in order: halve them until the refused ones stand alone, keep those.

    Args:
        messages: messages refused together, in order.
        refusal: why.
        attempt: classifies and commits a part again (see Attempt).
        keep: keeps one refused message as a rejection (see Keep).

    Returns:
        False when stopped first: what is not stored stays unacknowledged with the broker.
    """
    if len(messages) <= 1:
        return not messages or keep(messages[0], refusal)
    middle = len(messages) // 2
    # Halves in order, each committed before the next: sequence acks follow message order.
    for half in (messages[:middle], messages[middle:]):
        outcome = attempt(half)
        if outcome is False:
            return False
        if isinstance(outcome, Refusal):
            log.debug("%d messages refused again: halving", len(half))
            if not isolate(half, outcome, attempt, keep):
                return False
    return True


def refused_rejection(message: Message, error: Exception, topics: Topics) -> Rejection:
    """Return the rejection of a message the database refused, or our code failed on."""
    if not isinstance(error, psycopg.Error):
        return bug_rejection(message, error, topics)
    sqlstate = f" (SQLSTATE {error.sqlstate})" if error.sqlstate else ""
    return _rejection(
        message,
        topics,
        STORE_REFUSED,
        f"the database refused this message: {first_line(error)}{sqlstate}; fix the cause, "
        "then `streetsense ingest --replay-rejected` publishes it again (payload kept whole)",
    )


def bug_rejection(message: Message, error: Exception, topics: Topics) -> Rejection:
    """Return the rejection of a message our code failed on."""
    return _rejection(
        message,
        topics,
        INGEST_ERROR,
        f"ingest failed on this message with {type(error).__name__}: {first_line(error)}; "
        "this is a bug in streetsense: please report it with this row (the payload is kept)",
    )


def drop_readings(batch: Batch, rejection: Rejection) -> Batch:
    """Turn a refused message's batch into its rejection: its readings go, the rest stays.

    Committed, it still confirms the message's seqs and updates its device's state: a message
    kept in rejected_messages counts as handled, so an agent stops re-sending it.
    """
    batch.rows = ReadingRows()
    batch.revisions = Revisions()
    batch.reject(rejection)
    for activity in batch.devices.values():
        activity.rejected += 1
    return batch


def first_line(error: BaseException) -> str:
    """Return the first line of an error's message, or its type when it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _rejection(message: Message, topics: Topics, code: str, reason: str) -> Rejection:
    return Rejection(
        received_at=_received_at(message),
        topic=message.topic,
        reason_code=code,
        reason=reason,
        payload=message.payload,
        device_id=_device_id(message.topic, topics),
    )


def _received_at(message: Message) -> datetime:
    # The message broke our code once: its rejection must not break again on an absurd time.
    try:
        return datetime.fromtimestamp(message.received, UTC)
    except (OverflowError, OSError, ValueError):
        return datetime.now(UTC)


def _device_id(topic: str, topics: Topics) -> str | None:
    try:
        parsed = topics.parse(topic)
    except Exception:  # as above: a parse failure only loses the device id
        return None
    return parsed.device_id if isinstance(parsed, DeviceTopic) else None
