"""Exponential backoff with full jitter: one retry schedule for every reconnect and retry loop.

Full jitter draws each delay uniformly between 0 and a ceiling that doubles per failure up to a
cap. A crowd that failed together (a street of agents that lost the same broker, ingest
processes after a database restart) then comes back spread out: in bench/backoff_spread.py a
recovering broker sees 0.6x the peak of reconnects per 100 ms that "equal jitter" (half the
ceiling fixed, half random) gives it, with 2-4% fewer attempts in all; the price is the last
client back 1.2-1.3x later. Protecting the recovering service is what the schedule is for.
"""

from __future__ import annotations

import random


def full_jitter(failures: int, first_s: float, longest_s: float, rng: random.Random) -> float:
    """Return the delay after `failures` failures in a row (1: the first), for callers that keep
    the count themselves (in a database row, for example)."""
    # the exponent is capped so a long outage cannot overflow the float
    ceiling = min(longest_s, first_s * 2.0 ** min(max(failures - 1, 0), 64))
    return rng.uniform(0.0, ceiling)


class Backoff:
    """Delays drawn from [0, ceiling], the ceiling doubling from `first_s` up to `longest_s`."""

    def __init__(
        self, first_s: float = 1.0, longest_s: float = 60.0, rng: random.Random | None = None
    ) -> None:
        if not 0 < first_s <= longest_s:
            raise ValueError(f"backoff needs 0 < first_s ({first_s}) <= longest_s ({longest_s})")
        self.first_s = first_s
        self.longest_s = longest_s
        self.failures = 0
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography

    def ceiling(self) -> float:
        """Return the largest delay the next call may draw."""
        return min(self.longest_s, self.first_s * 2.0 ** min(self.failures, 64))

    def next_delay(self) -> float:
        """Return the delay before the next attempt, and count one more failure."""
        self.failures += 1
        return full_jitter(self.failures, self.first_s, self.longest_s, self._rng)

    def reset(self) -> None:
        """Start again from the shortest ceiling after a success."""
        self.failures = 0
