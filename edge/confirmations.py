"""Trust only confirmations ingest signed for this device (streetsense.confirm); count the rest.

A confirmation deletes buffered readings, so one that does not verify is ignored, counted
(`acks_refused` in the health heartbeat and the state file) and logged. An agent without a key
trusts none: it keeps every reading and re-sends until its key is installed (docs/edge.md).
"""

from __future__ import annotations

import logging
import time
from typing import Final

from streetsense.confirm import Ack, verify_ack
from streetsense.errors import PayloadError

log = logging.getLogger(__name__)
# Log a refused confirmation at most this often: a flood of forgeries must not flood the log.
LOG_EVERY_S: Final = 60.0
NO_KEY: Final = (
    "no confirmation key (device.confirm_key_file): confirmations cannot be verified, so no "
    "reading leaves the buffer; get the key with `streetsense registry key <device id>` on the "
    "ingest side and install it"
)


class Confirmations:
    """Verify acks for one device; keeps the count and time of what was refused and accepted."""

    def __init__(self, site: str, device_id: str, key: bytes | None) -> None:
        self.site = site
        self.device_id = device_id
        self.key = key
        self.refused = 0
        self.last_at_ms: int | None = None
        self._logged_at = float("-inf")
        if key is None:
            log.error("%s", NO_KEY)

    def verify(self, payload: bytes) -> Ack | None:
        """Return the ack if ingest signed it for this device; None (counted) otherwise."""
        if self.key is None:
            self._refuse(NO_KEY)
            return None
        try:
            ack = verify_ack(self.key, self.site, self.device_id, payload)
        except PayloadError as exc:
            self._refuse(f"ignoring a confirmation not signed for this device: {exc}")
            return None
        self.last_at_ms = ack.at_ms
        return ack

    def _refuse(self, why: str) -> None:
        self.refused += 1
        now = time.monotonic()
        if now - self._logged_at >= LOG_EVERY_S:
            self._logged_at = now
            log.error("%s (%d refused so far)", why, self.refused)
