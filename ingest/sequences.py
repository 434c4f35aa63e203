"""Per-device sequence bookkeeping: the highest seq handled without a gap, and the losses."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

# A device seen for the first time is assumed to number its readings from 1 (docs/ingest.md);
# an agent that starts higher sends `seq_floor` with its oldest buffered reading.
FIRST_CONTIGUOUS = 0


@dataclass(slots=True)
class SequenceState:
    """One device's confirmation state: `contiguous` is what the ack tells the device.

    `pending` holds handled seqs above a gap as sorted, disjoint, inclusive (start, end)
    ranges, so a long gap costs one range, not one entry per reading.
    """

    contiguous: int = FIRST_CONTIGUOUS
    max_seq: int = FIRST_CONTIGUOUS
    pending: list[tuple[int, int]] = field(default_factory=list)
    lost: int = 0

    def handle(self, seqs: Iterable[int], floor: int | None = None) -> int:
        """Mark seqs as handled and apply a sender's floor; return the newly lost count.

        Only holes below the highest seq seen before count as lost: a floor above everything
        seen is where a new device or a new buffer starts its numbers (our agent numbers from
        the epoch millisecond of its buffer), and readings an agent drops at its buffer cap
        before sending any are reported by the agent itself (`buffer_dropped`).
        """
        seen_before = self.max_seq
        ranges = _ranges(sorted(set(seqs)))
        if ranges:
            self.max_seq = max(self.max_seq, ranges[-1][1])
        self.pending = _merge(self.pending, [r for r in ranges if r[1] > self.contiguous])
        newly_lost = 0
        if floor is not None and floor - 1 > self.contiguous:
            newly_lost = self._close_gaps_below(floor, seen_before)
            self.max_seq = max(self.max_seq, floor - 1)
        self._advance()
        self.lost += newly_lost
        return newly_lost

    def _close_gaps_below(self, floor: int, seen_before: int) -> int:
        # What below the floor was never handled will never come; the part of it below the
        # highest seq seen before (a hole we know existed) is counted lost.
        limit = min(floor - 1, seen_before)
        handled = 0
        kept: list[tuple[int, int]] = []
        for start, end in self.pending:
            handled += max(0, min(end, limit) - start + 1)
            if end >= floor:
                kept.append((max(start, floor), end))
        lost = max(0, limit - self.contiguous - handled)
        self.pending = kept
        self.contiguous = floor - 1
        return lost

    def _advance(self) -> None:
        while self.pending and self.pending[0][0] <= self.contiguous + 1:
            self.contiguous = max(self.contiguous, self.pending[0][1])
            self.pending.pop(0)

    def flat_pending(self) -> list[int]:
        """Return the pending ranges flattened as [start1, end1, start2, end2, ...]."""
        return [bound for pair in self.pending for bound in pair]

    @classmethod
    def from_row(cls, contiguous: int, max_seq: int, flat: list[int], lost: int) -> SequenceState:
        """Rebuild a state from its stored columns."""
        pairs = [(flat[i], flat[i + 1]) for i in range(0, len(flat) - 1, 2)]
        return cls(contiguous, max_seq, pairs, lost)


def _ranges(sorted_seqs: list[int]) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    for seq in sorted_seqs:
        if ranges and seq == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], seq)
        else:
            ranges.append((seq, seq))
    return ranges


def _merge(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(a + b):
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
