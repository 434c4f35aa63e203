"""Clock sanity: flag readings whose device time cannot be trusted."""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)


class ClockGuard:
    """Flag times before a configured epoch, and readings made soon after the clock jumped.

    A jump is a step of the system clock against the monotonic clock larger than `max_jump_s`
    (an NTP sync after a boot without RTC, or an operator setting the time). Readings stamped
    within `settle_s` after a jump are flagged: the clock moved, so their time is doubtful.
    """

    def __init__(self, valid_after: float, max_jump_s: float, settle_s: float) -> None:
        self.valid_after = valid_after
        self.max_jump_s = max_jump_s
        self.settle_s = settle_s
        self._offset = time.time() - time.monotonic()
        self._suspect_until_mono = -1.0
        self.jumps = 0

    def sample(self) -> None:
        """Compare the system clock with the monotonic clock; note a jump."""
        offset = time.time() - time.monotonic()
        step = offset - self._offset
        self._offset = offset
        if abs(step) > self.max_jump_s:
            self.jumps += 1
            self._suspect_until_mono = time.monotonic() + self.settle_s
            log.warning(
                "the device clock jumped by %+.1f s; flagging readings as clock_suspect", step
            )

    def suspect(self, at: float) -> bool:
        """Tell whether a reading stamped `at` (epoch seconds) has an untrustworthy time."""
        return at < self.valid_after or time.monotonic() < self._suspect_until_mono

    @property
    def synchronised(self) -> bool:
        """Tell whether the clock looks right now."""
        return not self.suspect(time.time())
