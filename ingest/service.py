"""The ingest service: take batches from the inbox, commit them, then acknowledge."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Final

import psycopg

from ingest.batch import Batch
from ingest.classify import Classifier
from ingest.commit import CommitResult, commit_batch, resolve_unknown
from ingest.confirmations import AckSigner
from ingest.inbox import Inbox, Message
from ingest.isolate import (
    INGEST_ERROR,
    OUTAGES,
    STORE_REFUSED,
    Refusal,
    classify,
    drop_readings,
    first_line,
    isolate,
    refused_rejection,
    unlimited,
)
from ingest.link import BrokerLink
from ingest.metrics import IngestMetrics
from ingest.prune import Pruner
from ingest.refusals import RefusalThrottle
from ingest.registry_copy import RegistryCopy
from store.confirm_secret import read_confirm_secret
from store.db import connect, describe_url, require_url
from store.writes import ReadingWriter, Rejection
from streetsense.backoff import Backoff
from streetsense.config import Settings
from streetsense.lifecycle import StopSignal
from streetsense.topics import Topics

log = logging.getLogger(__name__)
PROGRESS_EVERY_S: Final = 30.0
# With no batch to commit, the commit thread looks for registry changes this often.
IDLE_POLL_S: Final = 1.0
# How ingest's connection shows in pg_stat_activity (operators, the ingest benchmark).
APPLICATION_NAME: Final = "streetsense-ingest"


@dataclass(slots=True)
class Totals:
    """Running totals for the progress log line."""

    messages: int = 0
    written: int = 0
    rejected: int = 0


class IngestService:
    """Subscribe, validate, batch, commit, acknowledge; survives broker and database outages."""

    def __init__(self, settings: Settings, stop: StopSignal, client_id: str | None = None) -> None:
        self.settings = settings
        self.stop = stop
        self.metrics = IngestMetrics()
        ingest = settings.ingest
        # Four batches in flight (filling, being classified, waiting for the commit thread,
        # committing), so the broker keeps sending while the database works: at half the
        # receive maximum it stopped while two batches were with the database, and packs
        # drained 20-30% slower (bench/RESULTS.md, fourth session).
        # The inbox holds at most one batch, so with the three behind it ingest never holds more
        # than the receive maximum, whatever the broker does.
        self.inbox = Inbox(min(ingest.batch_max_readings, max(1, ingest.receive_maximum // 4)))
        self.link = BrokerLink(settings, self.inbox, self.metrics, client_id)
        # the doctor finds each part's process in pg_stat_activity by this name
        partition = self.link.partition
        self.application_name = APPLICATION_NAME + (
            "" if partition.whole else f" part {partition.label}"
        )
        # Read at scrape time, so the lag shows even while a commit is stuck.
        self.metrics.lag_messages.set_function(self._lag_messages)
        self.metrics.lag_seconds.set_function(self._lag_seconds)
        self.classifier = Classifier(ingest, Topics(settings.mqtt.topic_prefix), {})
        self.refusals = RefusalThrottle(
            ingest.refusals_kept_per_minute, frozenset({STORE_REFUSED, INGEST_ERROR})
        )
        self.pruner = Pruner(ingest)
        # Classifies messages a second time (ingest.isolate): they were rate-limited once.
        self.again = unlimited(self.classifier)
        self.registry = RegistryCopy((self.classifier, self.again), self.metrics)
        # A refused message is kept whole, so it can be replayed once its cause is fixed.
        self.refused_cap = max(ingest.rejected_payload_cap, ingest.max_payload_bytes)
        self.url = require_url(settings.database)
        self.conn: psycopg.Connection | None = None
        self.db_backoff = Backoff(0.2, 30.0)
        self.writer = ReadingWriter()
        self.payload_cap = ingest.rejected_payload_cap
        self.totals = Totals()
        self.signer: AckSigner | None = None  # once the database gave the secret
        # Classified batches waiting for or in their commit, oldest first (one commit thread).
        self._pipeline: deque[Batch] = deque()
        self._commits: queue.Queue[Batch | None] = queue.Queue(maxsize=1)

    def run(self) -> None:
        """Run until the stop signal; flush, commit and ack what was taken, then disconnect."""
        self.metrics.serve(self.settings.ingest.metrics_host, self.settings.ingest.metrics_port)
        try:
            if not self._database():
                return
            self.link.start()
            self._loop()
        finally:
            self.link.stop()
            if self.conn is not None:
                self.conn.close()
            self.metrics.close()
            log.info(
                "ingest stopped: %d messages, %d readings written, %d rejected",
                self.totals.messages,
                self.totals.written,
                self.totals.rejected,
            )

    def _loop(self) -> None:
        # Classifying the next batch overlaps the database's work on this one.
        committer = threading.Thread(target=self._commit_loop, name="ingest-commit", daemon=True)
        committer.start()
        max_age = self.settings.ingest.batch_max_age_ms / 1000
        last_log = time.monotonic()
        try:
            while committer.is_alive():
                messages = self.inbox.take(max_age, self.stop.event)
                if messages:
                    for batch in self._classify(messages):
                        self._hand_over(batch, committer)
                if time.monotonic() - last_log >= PROGRESS_EVERY_S:
                    last_log = time.monotonic()
                    log.info(
                        "ingest: %d messages, %d readings written, %d rejected so far",
                        self.totals.messages,
                        self.totals.written,
                        self.totals.rejected,
                    )
                if self.stop.stopping and not messages:
                    return
        finally:
            # the refusals counted but not kept whole so far: their summaries are stored too
            summaries = self.refusals.summaries(time.time(), closing=True)
            if summaries:
                last = Batch(rejections=summaries)
                self._pipeline.append(last)
                self._hand_over(last, committer)
            self._hand_over(None, committer)
            committer.join()

    def _classify(self, messages: list[Message]) -> list[Batch]:
        self.metrics.received.inc(len(messages))
        # More than one batch only when a classification raised (ingest.isolate.classify).
        batches = classify(self.classifier, self.again, messages)
        now = time.time()
        for batch in batches:
            batch.rejections = self.refusals.filter(batch.rejections, now)
        self._pipeline.extend(batches)
        return batches

    def _hand_over(self, batch: Batch | None, committer: threading.Thread) -> None:
        while committer.is_alive():
            try:
                self._commits.put(batch, timeout=0.5)
                return
            except queue.Full:
                continue

    def _commit_loop(self) -> None:
        """Commit batches in order, then acknowledge them; stops on None or a stop mid-outage."""
        while True:
            try:
                batch = self._commits.get(timeout=IDLE_POLL_S)
            except queue.Empty:
                self._idle()
                continue
            if batch is None:
                return
            try:
                result = self._commit(batch, self.classifier, self.payload_cap)
            except Exception as exc:  # not an outage: retrying the batch would stall ingest
                log.error(
                    "commit of %d messages refused (%s); isolating the messages at fault",
                    len(batch.messages),
                    first_line(exc),
                    exc_info=not isinstance(exc, psycopg.Error),  # our bug: show where
                )
                stored = isolate(batch.messages, Refusal(exc, batch), self._attempt, self._keep)
            else:
                stored = self._settle(batch, result)
            if not stored:
                return  # stopped while the database was away: the broker keeps the messages
            self._pipeline.popleft()
            if self.pruner.due() and self.conn is not None:
                self.pruner.prune(self.conn)

    def _settle(self, batch: Batch, result: CommitResult | None) -> bool:
        """Acknowledge a committed batch, publish its sequence acks, count it.

        Returns:
            False when the commit stopped first (result None): nothing to acknowledge.
        """
        if result is None:
            return False
        self.metrics.acked.inc(self.link.ack(batch.messages))
        if result.acks and self.signer is not None:
            sign = self.signer.payload
            self.link.publish_acks(
                {d: (site, sign(site, d, seq)) for d, (site, seq) in result.acks.items()}
            )
        self._count(batch, result)
        return True

    def _attempt(self, messages: list[Message]) -> bool | Refusal:
        """Classify part of a refused batch again and commit it (ingest.isolate.Attempt)."""
        batch = Batch()
        try:
            for message in messages:
                self.again.add(message, batch)
        except Exception as exc:  # our bug, hit by one of them: narrowed down the same way
            return Refusal(exc, None)
        try:
            result = self._commit(batch, self.again, self.payload_cap)
        except Exception as exc:  # refused again: isolate halves them
            return Refusal(exc, batch)
        return self._settle(batch, result)

    def _keep(self, message: Message, refusal: Refusal) -> bool:
        """Store a refused message as a rejection, then acknowledge it (ingest.isolate.Keep)."""
        rejection = refused_rejection(message, refusal.error, self.classifier.topics)
        log.error(
            "message on %s refused, keeping it in rejected_messages as %s: %s",
            message.topic,
            rejection.reason_code,
            rejection.reason,
        )
        if refusal.batch is not None:
            # With its seqs and device state, so that its agent stops re-sending it.
            batch = drop_readings(refusal.batch, rejection)
            try:
                result = self._commit(batch, self.again, self.refused_cap)
            except Exception as exc:  # refused even so: keep the rejection alone
                log.warning("its seqs and device state were refused too (%s)", first_line(exc))
            else:
                return self._kept(batch, result)
        return self._keep_alone(message, rejection)

    def _keep_alone(self, message: Message, rejection: Rejection) -> bool:
        batch = Batch(messages=[message])
        batch.reject(rejection)
        while True:
            try:
                result = self._commit(batch, self.again, self.refused_cap)
            except Exception:  # never acknowledge what is not stored
                delay = self.db_backoff.next_delay()
                log.exception(
                    "storing the rejection of the message on %s failed; retrying in %.1f s",
                    message.topic,
                    delay,
                )
                if self.stop.wait(delay):
                    return False
            else:
                return self._kept(batch, result)

    def _kept(self, batch: Batch, result: CommitResult | None) -> bool:
        if result is not None:
            self.metrics.poison.inc()
        return self._settle(batch, result)

    def _lag_messages(self) -> int:
        return self.inbox.depth()[0] + sum(len(b.messages) for b in list(self._pipeline))

    def _lag_seconds(self) -> float:
        pipeline = list(self._pipeline)
        if pipeline and pipeline[0].messages:
            return max(0.0, time.time() - pipeline[0].messages[0].received)
        return self.inbox.depth()[1]

    def _commit(
        self, batch: Batch, classifier: Classifier, payload_cap: int
    ) -> CommitResult | None:
        """Commit the batch, retrying outages with backoff until it is stored or a stop is asked.

        Other errors (the database refusing the data, our bugs) are raised.
        """
        while True:
            try:
                conn = self._connection()
                self.registry.refresh(conn)
                before = len(batch.rejections)
                resolve_unknown(conn, classifier, batch, self.settings.ingest.auto_register)
                # refusals of unknown devices are made here: kept within the same bound
                batch.rejections[before:] = self.refusals.filter(
                    batch.rejections[before:], time.time()
                )
                started = time.perf_counter()
                result = commit_batch(conn, batch, payload_cap, self.writer)
                self.metrics.commit_seconds.observe(time.perf_counter() - started)
                self.db_backoff.reset()
                return result
            except OUTAGES as exc:
                self.metrics.database_errors.inc()
                delay = self.db_backoff.next_delay()
                log.warning(
                    "commit of %d messages failed (%s); retrying in %.1f s, the broker "
                    "keeps them unacknowledged",
                    len(batch.messages),
                    first_line(exc),
                    delay,
                )
                self._drop_connection()
                if self.stop.wait(delay):
                    return None

    def _database(self) -> bool:
        """Wait for the database at startup; False when stopped first."""
        while not self.stop.stopping:
            try:
                conn = self._connection()
                self.signer = AckSigner(read_confirm_secret(conn))
                self.registry.refresh(conn)
                return True
            except OUTAGES as exc:
                delay = self.db_backoff.next_delay()
                log.warning("%s; retrying in %.1f s", exc, delay)
                self._drop_connection()
                self.stop.wait(delay)
        return False

    def _connection(self) -> psycopg.Connection:
        if self.conn is None or self.conn.closed:
            self.conn = connect(
                self.url,
                autocommit=True,
                timeout_s=self.settings.database.connect_timeout_s,
                application_name=self.application_name,
            )
            # With a multi-host URL, which server answered (after a failover: the new primary).
            log.info(
                "connected to PostgreSQL at %s:%s (%s)",
                self.conn.info.host,
                self.conn.info.port,
                describe_url(self.url),
            )
            self.registry.connected(self.conn)
        return self.conn

    def _idle(self) -> None:
        """Take registry changes while no batch comes: replayed messages meet the new one."""
        if self.conn is None or self.conn.closed:
            return  # the next commit connects, and reads the registry
        try:
            self.registry.refresh(self.conn)
        except OUTAGES as exc:
            log.warning("reading the registry failed (%s); the next commit retries", exc)
            self._drop_connection()

    def _drop_connection(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _count(self, batch: Batch, result: CommitResult) -> None:
        metrics = self.metrics
        readings = len(batch.rows) + len(batch.revisions)
        metrics.written.inc(result.written)
        metrics.revised.inc(result.revised)
        metrics.duplicates.inc(readings - result.written - result.revised)
        metrics.sequence_lost.inc(result.lost)
        metrics.batch_messages.observe(len(batch.messages))
        metrics.batch_readings.observe(readings)
        for reason, count in batch.reasons.items():
            metrics.rejected.labels(reason).inc(count)
        for why, count in batch.ignored.items():
            metrics.ignored.labels(why).inc(count)
        for activity in batch.devices.values():
            if activity.lateness > float("-inf"):
                metrics.lateness.observe(activity.lateness)
        self.totals.messages += len(batch.messages)
        self.totals.written += result.written
        self.totals.rejected += sum(batch.reasons.values())
