"""Token buckets: a steady rate with bursts, for devices, clients and the agent's backlog."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up; times are any monotonic seconds."""

    rate: float
    burst: float
    tokens: float
    updated: float

    @classmethod
    def full(cls, rate: float, burst: float, now: float) -> TokenBucket:
        """Return a bucket holding its whole burst."""
        return cls(rate, burst, burst, now)

    def refill(self, now: float) -> float:
        """Add what accrued since the last call; return the tokens now available."""
        # A clock stepped back refills nothing; it must not drain the bucket either.
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.updated = max(self.updated, now)
        return self.tokens

    def take(self, now: float, count: float = 1.0) -> bool:
        """Take `count` tokens if the bucket holds them; False (nothing taken) otherwise."""
        if self.refill(now) >= count:
            self.tokens -= count
            return True
        return False

    def wait_s(self, count: float = 1.0) -> float:
        """Return the seconds until `count` tokens are there (as of the last refill)."""
        if self.tokens >= count:
            return 0.0
        return (count - self.tokens) / self.rate if self.rate > 0 else float("inf")

    def is_full(self, now: float) -> bool:
        """Whether the bucket would hold its whole burst now (its state is then worth nothing)."""
        return self.tokens + max(0.0, now - self.updated) * self.rate >= self.burst


class KeyedBuckets:
    """One token bucket per key (device, client address), at most `max_keys` of them."""

    def __init__(self, rate: float, burst: float, max_keys: int = 1_000_000) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self.max_keys = max_keys
        self._buckets: dict[str, TokenBucket] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def allow(self, key: str, now: float) -> bool:
        """Take a token for `key`; False when its bucket is empty (a rate <= 0: no limit)."""
        return self.take(key, now) == 0.0

    def take(self, key: str, now: float) -> float:
        """Take a token for `key`; return 0 when granted, else the seconds until one is there.

        A rate of 0 or less means no limit.
        """
        if self.rate <= 0:
            return 0.0
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._forget_full(now)
            bucket = self._buckets[key] = TokenBucket.full(self.rate, self.burst, now)
        return 0.0 if bucket.take(now) else bucket.wait_s()

    def _forget_full(self, now: float) -> None:
        # A full bucket holds no state worth keeping, so idle keys are dropped first; when every
        # key is busy (a flood of distinct keys), all are forgotten rather than growing memory.
        self._buckets = {k: b for k, b in self._buckets.items() if not b.is_full(now)}
        if len(self._buckets) >= self.max_keys:
            self._buckets.clear()
