"""Webhooks signed with HMAC-SHA256, written by hand for exact control of what is signed.

Each request carries `X-Streetsense-Delivery` (the outbox id: receivers drop repeats with it),
`X-Streetsense-Timestamp` (Unix seconds: receivers refuse old ones, against replay) and
`X-Streetsense-Signature: sha256=<hex>` over `<timestamp>.<body>`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import urllib.error
import urllib.request
from typing import Final

from streetsense.errors import ConfigError

SIGNATURE_HEADER: Final = "X-Streetsense-Signature"
TIMESTAMP_HEADER: Final = "X-Streetsense-Timestamp"
DELIVERY_HEADER: Final = "X-Streetsense-Delivery"


class DeliveryError(Exception):
    """One attempt failed; the message says why (kept in the outbox row)."""


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """Return the signature header value of a body sent at `timestamp`."""
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: bytes, timestamp: str, body: bytes, signature: str) -> bool:
    """Return whether a signature is right (constant-time), for receivers and tests."""
    try:
        expected = sign(secret, int(timestamp), body)
    except ValueError:
        return False
    return hmac.compare_digest(expected, signature)


def secret_from_env(name: str) -> bytes:
    """Return the HMAC secret a channel names, or explain how to set it."""
    value = os.environ.get(name, "")
    if len(value) < 16:
        raise ConfigError(
            f"webhook secret {name} is {'unset' if not value else 'shorter than 16 characters'}; "
            f"set {name} to a random string of 32 characters or more (the receiver checks "
            "signatures with it)"
        )
    return value.encode()


def post(
    url: str, body: bytes, secret: bytes, delivery: int, timestamp: int, timeout_s: float
) -> None:
    """POST one signed notification; raise DeliveryError unless the receiver answers 2xx."""
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked by the rules file
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "streetsense-alerts/1",
            DELIVERY_HEADER: str(delivery),
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(secret, timestamp, body),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            response.read(65_536)
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"{url} answered {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"{url} unreachable: {reason}") from exc
