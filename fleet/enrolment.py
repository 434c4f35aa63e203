"""Enrolment requests: match the serial against the allow-list, or keep it pending for an
operator; once approved, issue the device its own credentials.

The first request of a serial binds it to the fingerprint (SHA-256) of the password it
carried. Another request for that serial with another password (a copied image, a replay, a
stolen bootstrap secret racing the real device) gets nothing and is counted as a conflict the
operator sees; an enrolled or revoked serial is never enrolled again until an operator resets
it. Requests are answered on the serial's reply topic with the request's nonce, so a device
reads only the answers to its own requests.
"""

from __future__ import annotations

import hashlib
import logging
import time

from fleet.context import Fleet
from fleet.credentials import FleetError, issue
from store import fleet_enrolment
from store.fleet_enrolment import Enrolment, Placement
from streetsense.errors import PayloadError, TopicError
from streetsense.fleet_protocol import EnrolReply, EnrolRequest
from streetsense.ratelimit import KeyedBuckets

log = logging.getLogger(__name__)
LOG_EVERY_S = 60.0


class Enroller:
    """Answer enrolment requests for one fleet (the service keeps one)."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        rate = fleet.settings.fleet.enrol_rate_per_s
        self.limiter = KeyedBuckets(rate, max(1, int(rate * 10)))
        self.dropped = 0
        self._logged_at = float("-inf")

    def handle(self, topic: str, payload: bytes) -> EnrolReply | None:
        """Answer one request (and publish the answer); None when nothing can be answered."""
        try:
            batch_id, serial = self.fleet.fleet_topics.parse_enrol(topic)
        except TopicError as exc:
            log.warning("enrolment request on a bad topic: %s", exc)
            return None
        if not self.limiter.allow(batch_id, time.monotonic()):
            self._drop(batch_id)
            return None
        try:
            request = EnrolRequest.decode(payload)
        except PayloadError as exc:
            log.warning("enrolment request of %s/%s refused: %s", batch_id, serial, exc)
            return None  # no nonce to answer with: the device's own check says what is wrong
        reply = self._decide(batch_id, serial, request)
        self.fleet.link.publish(
            self.fleet.fleet_topics.enrol_reply(batch_id, serial), reply.encode()
        )
        return reply

    def _drop(self, batch_id: str) -> None:
        self.dropped += 1
        now = time.monotonic()
        if now - self._logged_at >= LOG_EVERY_S:
            self._logged_at = now
            log.warning(
                "batch %s asks to enrol faster than fleet.enrol_rate_per_s: %d requests left "
                "unanswered so far (devices ask again)",
                batch_id,
                self.dropped,
            )

    def _decide(self, batch_id: str, serial: str, request: EnrolRequest) -> EnrolReply:
        def refused(reason: str) -> EnrolReply:
            return EnrolReply("refused", request.nonce, reason=reason)

        if request.serial != serial or request.batch != batch_id:
            return refused("the request names another serial or batch than its topic")
        fleet = self.fleet
        batch = fleet_enrolment.batch(fleet.conn, batch_id)
        now = fleet.clock()
        if batch is None or batch.closed_at is not None or batch.expires_at <= now:
            return refused(
                f"batch {batch_id} is closed or expired: ask the operator for a current image"
            )
        fingerprint = hashlib.sha256(request.password.encode()).hexdigest()
        with fleet.conn.transaction():
            known = fleet_enrolment.enrolment(fleet.conn, serial, lock=True)
            if known is None:
                first = self._first(batch_id, serial, request, fingerprint)
                if isinstance(first, EnrolReply):
                    return first
                known = first
            elif known.password_sha256 != fingerprint:
                fleet_enrolment.note_request(fleet.conn, serial, now, conflict=True)
                fleet_enrolment.audit(fleet.conn, now, "fleet", "conflict", serial,
                                      {"batch": batch_id, "state": known.state,
                                       "hardware": dict(request.hardware)})  # fmt: skip
                log.warning(
                    "serial %s is claimed by a second device (another password): refused; "
                    "it stays %s for the device that asked first",
                    serial,
                    known.state,
                )
                return refused(
                    "this serial is already claimed by another device; if this is the real "
                    "device, the operator must reset the serial (streetsense fleet reset)"
                )
            else:
                fleet_enrolment.note_request(fleet.conn, serial, now, conflict=False)
            return self._answer(known, batch_id, request)

    def _first(
        self, batch_id: str, serial: str, request: EnrolRequest, fingerprint: str
    ) -> Enrolment | EnrolReply:
        fleet = self.fleet
        listed = fleet_enrolment.allowed(fleet.conn, serial)
        cap = fleet.settings.fleet.pending_per_batch
        if listed is None and fleet_enrolment.pending_count(fleet.conn, batch_id) >= cap:
            return EnrolReply(
                "refused", request.nonce,
                reason=f"batch {batch_id} has {cap} serials pending already; ask the operator",
            )  # fmt: skip
        created = fleet_enrolment.first_request(
            fleet.conn, serial, batch_id, fingerprint, dict(request.hardware),
            request.agent_version, fleet.clock(),
        )  # fmt: skip
        assert created is not None  # the row lock above serialises requests of one serial
        fleet_enrolment.audit(fleet.conn, fleet.clock(), "fleet", "enrol request", serial,
                              {"batch": batch_id, "hardware": dict(request.hardware),
                               "allow_listed": listed is not None})  # fmt: skip
        return created

    def _answer(self, known: Enrolment, batch_id: str, request: EnrolRequest) -> EnrolReply:
        fleet = self.fleet
        nonce = request.nonce
        if known.state == "refused":
            return EnrolReply("refused", nonce, reason=known.reason or "refused by an operator")
        if known.state == "revoked":
            return EnrolReply(
                "refused", nonce,
                reason="this device was revoked; an operator must reset its serial first",
            )  # fmt: skip
        place = fleet_enrolment.allowed(fleet.conn, request.serial)
        if place is None or (place.batch_id is not None and place.batch_id != batch_id):
            return EnrolReply(
                "pending", nonce,
                reason="not on the installers' allow-list: waiting for an operator's approval",
            )  # fmt: skip
        if known.state == "enrolled":
            # Asked again with the same password (the answer was lost): it holds its client.
            return EnrolReply("approved", nonce, device=place.device_id, site=place.site_id,
                              username=place.device_id)  # fmt: skip
        return self._enrol(place, batch_id, request)

    def _enrol(self, place: Placement, batch_id: str, request: EnrolRequest) -> EnrolReply:
        fleet = self.fleet
        nonce = request.nonce
        try:
            problems = fleet_enrolment.placement_problems(fleet.conn, [place])
            if problems:
                raise FleetError("; ".join(problems))
            issue(fleet, place, batch_id, request.password, dict(request.hardware))
        except FleetError as exc:
            log.error("cannot enrol serial %s: %s", request.serial, exc)
            return EnrolReply("pending", nonce, reason="its placement needs fixing by an operator")
        now = fleet.clock()
        fleet_enrolment.mark_enrolled(fleet.conn, request.serial, place.device_id, now)
        fleet_enrolment.audit(fleet.conn, now, "fleet", "enrol", place.device_id,
                              {"serial": request.serial, "batch": batch_id,
                               "site": place.site_id})  # fmt: skip
        log.info("serial %s enrolled as %s/%s", request.serial, place.site_id, place.device_id)
        return EnrolReply("approved", nonce, device=place.device_id, site=place.site_id,
                          username=place.device_id)  # fmt: skip
