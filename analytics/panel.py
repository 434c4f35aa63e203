"""Many regular time series in one flat array with offsets, and their right-aligned matrix view."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

SECONDS_PER_DAY = 86_400


@dataclass(frozen=True, slots=True, eq=False)
class Panel:
    """Regular series sharing one step: values flat, series i is values[indptr[i]:indptr[i+1]].

    Gaps are NaN. `end` holds the epoch second (UTC) of each series' last slot; `capacity` is
    the upper bound per series (NaN when unbounded; a bounded series is also bounded below by 0).
    """

    values: FloatArray
    indptr: IntArray
    step: int
    end: IntArray
    ids: tuple[str, ...]
    capacity: FloatArray

    def __post_init__(self) -> None:
        """Check shapes and dtypes so models can trust them."""
        n = len(self.ids)
        if self.values.dtype != np.float64 or self.values.ndim != 1:
            raise ValueError("values must be a flat float64 array")
        if self.indptr.dtype != np.int64 or self.indptr.shape != (n + 1,):
            raise ValueError(f"indptr must be int64 of length {n + 1}")
        if n and (self.indptr[0] != 0 or self.indptr[-1] != self.values.size):
            raise ValueError("indptr must start at 0 and end at len(values)")
        if np.any(np.diff(self.indptr) < 0):
            raise ValueError("indptr must be non-decreasing")
        if self.end.shape != (n,) or self.capacity.shape != (n,):
            raise ValueError("end and capacity need one entry per series")
        if self.step <= 0:
            raise ValueError("step must be a positive number of seconds")

    @property
    def n_series(self) -> int:
        """Return the number of series."""
        return len(self.ids)

    @property
    def lengths(self) -> IntArray:
        """Return the number of slots of each series."""
        return np.diff(self.indptr)

    @property
    def mask(self) -> BoolArray:
        """Return True where a value was observed (not a gap)."""
        return ~np.isnan(self.values)

    def matrix(self, width: int | None = None) -> FloatArray:
        """Return the last `width` slots of every series as rows aligned on their last slot.

        Args:
            width: columns wanted; defaults to the longest series.

        Returns:
            An (n_series, width) array, NaN left of a shorter series. A view when all series
            have the same length, so callers must not write into it.
        """
        lengths = self.lengths
        n = self.n_series
        if n == 0:
            return np.empty((0, width or 0))
        width = int(lengths.max()) if width is None else width
        if np.all(lengths == lengths[0]) and lengths[0] >= width:
            length = int(lengths[0])
            return self.values.reshape(n, length)[:, length - width :]
        return _padded(self.values, self.indptr, width)

    def select(self, rows: IntArray) -> Panel:
        """Return a panel holding only the given series, in the given order."""
        lengths = self.lengths[rows]
        indptr = np.zeros(rows.size + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        src = _ranges(self.indptr[rows], lengths)
        return Panel(
            values=self.values[src],
            indptr=indptr,
            step=self.step,
            end=self.end[rows],
            ids=tuple(self.ids[i] for i in rows),
            capacity=self.capacity[rows],
        )


def _ranges(starts: IntArray, lengths: IntArray) -> IntArray:
    """Return the concatenation of arange(start, start + length) for each pair, vectorised."""
    total = int(lengths.sum())
    offsets = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    return np.arange(total, dtype=np.int64) + offsets


def _padded(values: FloatArray, indptr: IntArray, width: int) -> FloatArray:
    """Copy the last `width` values of each series into NaN-padded right-aligned rows."""
    lengths = np.diff(indptr)
    n = lengths.size
    kept = np.minimum(lengths, width)
    out = np.full((n, width), np.nan)
    src = _ranges(indptr[1:] - kept, kept)
    rows = np.repeat(np.arange(n), kept)
    cols = _ranges(width - kept, kept)
    out[rows, cols] = values[src]
    return out


def from_matrix(
    matrix: FloatArray,
    *,
    step: int,
    end: int | np.int64 | IntArray,
    ids: tuple[str, ...] | None = None,
    capacity: FloatArray | None = None,
) -> Panel:
    """Build a panel from an (n_series, length) array of equal-length series."""
    n, length = matrix.shape
    return Panel(
        values=np.ascontiguousarray(matrix, dtype=np.float64).reshape(-1),
        indptr=np.arange(n + 1, dtype=np.int64) * length,
        step=step,
        end=np.asarray(end, dtype=np.int64) * np.ones(n, dtype=np.int64),
        ids=ids if ids is not None else tuple(str(i) for i in range(n)),
        capacity=np.full(n, np.nan) if capacity is None else capacity.astype(np.float64),
    )


def from_long(
    codes: IntArray,
    seconds: IntArray,
    values: FloatArray,
    *,
    ids: tuple[str, ...],
    step: int,
    capacity: FloatArray | None = None,
) -> Panel:
    """Align irregular long-form readings to a regular grid of `step` seconds.

    Each reading goes to its nearest slot; readings sharing a slot are averaged; slots between a
    series' first and last reading that got none stay NaN.

    Args:
        codes: series index (into `ids`) of each reading.
        seconds: epoch second (UTC) of each reading.
        values: the readings; NaN readings count as missing.
        ids: series names.
        step: grid step in seconds.
        capacity: upper bound per series, NaN when unbounded.

    Returns:
        The aligned panel.
    """
    n = len(ids)
    slots = np.floor_divide(seconds + step // 2, step)
    present = np.bincount(codes, minlength=n) > 0
    first = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    last = np.full(n, np.iinfo(np.int64).min, dtype=np.int64)
    np.minimum.at(first, codes, slots)
    np.maximum.at(last, codes, slots)
    lengths = np.where(present, last - first + 1, 0)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    position = indptr[codes] + slots - first[codes]
    finite = ~np.isnan(values)
    total = np.bincount(position[finite], weights=values[finite], minlength=int(indptr[-1]))
    count = np.bincount(position[finite], minlength=int(indptr[-1]))
    with np.errstate(invalid="ignore", divide="ignore"):
        flat = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return Panel(
        values=flat.astype(np.float64),
        indptr=indptr,
        step=step,
        end=np.where(present, last * step, 0).astype(np.int64),
        ids=ids,
        capacity=np.full(n, np.nan) if capacity is None else capacity.astype(np.float64),
    )
