"""Exponential backoff with full jitter, so many processes do not retry in step."""

from __future__ import annotations

import random


class Backoff:
    """Delays that double from `initial_s` up to `maximum_s`, each drawn at random below."""

    def __init__(self, initial_s: float = 0.2, maximum_s: float = 30.0) -> None:
        self.initial_s = initial_s
        self.maximum_s = maximum_s
        self.attempts = 0

    def next_delay(self) -> float:
        """Return the next delay in seconds."""
        ceiling = min(self.maximum_s, self.initial_s * 2**self.attempts)
        self.attempts += 1
        # Jitter is not security-relevant.
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311

    def reset(self) -> None:
        """Start over after a success."""
        self.attempts = 0
