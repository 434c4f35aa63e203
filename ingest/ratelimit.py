"""Per-device token buckets: a flooding device is refused without slowing the others."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class DeviceRateLimiter:
    """Allow each device `rate_per_s` messages per second on average, `burst` at once."""

    def __init__(self, rate_per_s: float, burst: int, max_devices: int = 1_000_000) -> None:
        self.rate = rate_per_s
        self.burst = float(max(burst, 1))
        self.max_devices = max_devices
        self._buckets: dict[str, _Bucket] = {}

    def allow(self, device_id: str, now: float) -> bool:
        """Take one token for the device; False when its bucket is empty."""
        if self.rate <= 0:
            return True
        bucket = self._buckets.get(device_id)
        if bucket is None:
            if len(self._buckets) >= self.max_devices:
                # Forget full buckets first: they carry no state worth keeping.
                self._buckets.clear()
            bucket = self._buckets[device_id] = _Bucket(self.burst, now)
        else:
            # A clock stepped back refills nothing; it must not drain the bucket either.
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return True
        return False
