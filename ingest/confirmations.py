"""Sign each device's ack with its key (streetsense.confirm), so only ingest can confirm."""

from __future__ import annotations

import time
from typing import Final

from streetsense.confirm import device_key, sign_ack

_KEY_CACHE_SIZE: Final = 200_000


class AckSigner:
    """Build signed ack payloads; keeps the derived keys of the devices it has seen."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self._keys: dict[str, bytes] = {}

    def payload(self, site: str, device_id: str, seq: int) -> bytes:
        """Return the signed ack telling the device everything up to `seq` is stored."""
        key = self._keys.get(device_id)
        if key is None:
            if len(self._keys) >= _KEY_CACHE_SIZE:
                self._keys.clear()
            key = self._keys[device_id] = device_key(self.secret, device_id)
        return sign_ack(key, site, device_id, seq, time.time_ns() // 1_000_000)
