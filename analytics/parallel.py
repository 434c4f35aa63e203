"""Independent chunks of a fit on several cores: threads, since numpy's array work releases
the GIL and threads share the data (no copies, no pickling, nothing forked)."""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

logger = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")

# More threads than this gain little: the chunks' arrays compete for memory bandwidth.
MOST_WORKERS = 8
# A count asked for is held to this: each thread holds a chunk's temporaries, so a mistyped
# 1000 would hold a thousand of them at once for no speed (a fit has few cores to share).
MOST_REQUESTED = 64
# Rows of a whole history worked on at once by `by_rows`: a slice's full-width temporaries
# stay a few MB, not the whole history's.
WHOLE_HISTORY_ROWS = 256
# Chunks waiting for the caller, per worker: bounds the results held at once.
_AHEAD = 2


def usable_cores() -> int:
    """Return the cores this process may run on (its affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not every platform has affinities
        return os.cpu_count() or 1


def worker_count(requested: int | None = None) -> int:
    """Return how many workers a fit uses: `requested` when above 0 (at most
    `MOST_REQUESTED`), else one per usable core, at most `MOST_WORKERS` (1 on a single-core
    device)."""
    if requested is not None and requested < 0:
        raise ValueError(f"workers must be 0 (one per core) or more, not {requested}")
    if requested and requested > MOST_REQUESTED:
        logger.warning(
            "workers = %d: held to %d threads (more only hold more memory); set "
            "analytics.workers to 0 for one per core",
            requested, MOST_REQUESTED,
        )  # fmt: skip
        return MOST_REQUESTED
    if requested:
        return requested
    return max(1, min(usable_cores(), MOST_WORKERS))


def by_rows(
    work: Callable[[slice], Result],
    n: int,
    rows: int = WHOLE_HISTORY_ROWS,
    workers: int | None = None,
) -> list[Result]:
    """Return `work(rows)` for consecutive slices of at most `rows` of `n` rows, in order,
    computed as `map_ordered` does: for row-wise work on whole matrices, which then never
    holds more than a few slices' temporaries at once."""
    slices = [slice(start, min(n, start + rows)) for start in range(0, n, rows)]
    return list(map_ordered(work, slices, workers))


def map_ordered(
    work: Callable[[Item], Result], items: Sequence[Item], workers: int | None = None
) -> Iterator[Result]:
    """Yield `work(item)` for each item in order, computed on up to `workers` threads (None
    or 0: `worker_count()`); with one worker or one item, in the caller's thread.

    A worker's exception is raised here, to the caller, and the chunks not yet started are
    cancelled; so are they when the caller stops early (an interrupt, a closed generator).
    """
    count = min(worker_count(workers), len(items))
    if count <= 1:
        yield from map(work, items)
        return
    logger.debug("%d chunks on %d threads", len(items), count)
    pending: deque[Future[Result]] = deque()
    executor = ThreadPoolExecutor(count, thread_name_prefix="analytics-fit")
    try:
        queue = iter(items)
        for item in queue:
            pending.append(executor.submit(work, item))
            if len(pending) >= count * _AHEAD:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
