"""Confirmations only ingest can produce: each `.../ack` carries an HMAC with the device's key.

An ack tells an agent it may delete every buffered reading up to `seq`, so a forged one deletes
readings that were never stored. The broker cannot be trusted to stop forgeries (an anonymous
broker, or any client allowed to publish on `.../ack`), so ingest signs each ack and the agent
verifies it:

- the city has one secret, held by ingest (in the database, readable by ingest's role only);
- a device's key is HMAC-SHA256(secret, "streetsense confirm key v1" + device id): the
  registry stores no key, and `streetsense registry key DEVICE` prints a device's key for the
  installer (or, later, fleet enrolment) to put on the device (`device.confirm_key_file`);
- an ack is `{"seq": N, "t": <ms since the epoch>, "mac": <hex>}`, the MAC being
  HMAC-SHA256(device key, "streetsense ack v1\\n<site>\\n<device>\\n<seq>\\n<t>"): it binds the
  confirmed range (everything up to `seq`), the device and its topic's site, and the time.

Standard library only: the edge agent uses this module too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Final

from streetsense.errors import ConfigError, PayloadError

KEY_BYTES: Final = 32
_KEY_LABEL: Final = b"streetsense confirm key v1\n"
_ACK_LABEL: Final = "streetsense ack v1"
_MAX_ACK_BYTES: Final = 512


@dataclass(frozen=True, slots=True)
class Ack:
    """A verified confirmation: every reading up to `seq` is stored; signed at `at_ms`."""

    seq: int
    at_ms: int


def device_key(secret: bytes, device_id: str) -> bytes:
    """Return one device's confirmation key, derived from the city secret."""
    if len(secret) < KEY_BYTES:
        raise ConfigError(f"the confirmation secret must be at least {KEY_BYTES} bytes")
    return hmac.digest(secret, _KEY_LABEL + device_id.encode(), hashlib.sha256)


def key_text(key: bytes) -> str:
    """Return a key as the hex text an installer copies into the device's key file."""
    return key.hex()


def parse_key(text: str, where: str) -> bytes:
    """Parse a key file's hex text.

    Raises:
        ConfigError: not 64 hex digits; names `where` (the setting or file).
    """
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise ConfigError(
            f"{where} must hold the device's confirmation key, {KEY_BYTES * 2} hex digits; "
            "get it with `streetsense registry key <device id>` on the ingest side"
        )
    return key


def _mac(key: bytes, site: str, device_id: str, seq: int, at_ms: int) -> str:
    message = f"{_ACK_LABEL}\n{site}\n{device_id}\n{seq}\n{at_ms}".encode()
    return hmac.digest(key, message, hashlib.sha256).hex()


def sign_ack(key: bytes, site: str, device_id: str, seq: int, at_ms: int) -> bytes:
    """Return the payload of a signed ack for one device."""
    body = {"seq": seq, "t": at_ms, "mac": _mac(key, site, device_id, seq, at_ms)}
    return json.dumps(body, separators=(",", ":")).encode()


def verify_ack(key: bytes, site: str, device_id: str, payload: bytes) -> Ack:
    """Return the confirmation a payload carries, if ingest signed it for this device.

    Raises:
        PayloadError: malformed, unsigned, or signed with another key, for another device,
            site, range or time.
    """
    if len(payload) > _MAX_ACK_BYTES:
        raise PayloadError(f"an ack is at most {_MAX_ACK_BYTES} bytes")
    try:
        document = json.loads(payload)
    except ValueError as exc:
        raise PayloadError(f"not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise PayloadError("not a JSON object")
    seq, at_ms, mac = _natural(document, "seq"), _natural(document, "t"), document.get("mac")
    if not isinstance(mac, str):
        raise PayloadError("unsigned (no 'mac'): not from ingest", field="mac")
    if not hmac.compare_digest(mac, _mac(key, site, device_id, seq, at_ms)):
        raise PayloadError("the signature does not match this device's key", field="mac")
    return Ack(seq, at_ms)


def _natural(document: dict[str, object], name: str) -> int:
    value = document.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise PayloadError(f"'{name}' is not a non-negative integer", field=name)
    return value
