"""The kernel's backoff (full jitter) and token buckets, shared by every room."""

from __future__ import annotations

import random

import pytest

from streetsense.backoff import Backoff
from streetsense.ratelimit import KeyedBuckets, TokenBucket


def test_full_jitter_draws_from_zero_to_a_doubling_capped_ceiling() -> None:
    backoff = Backoff(1.0, 8.0, rng=random.Random(7))
    ceilings = []
    for _ in range(6):
        ceilings.append(backoff.ceiling())
        assert 0.0 <= backoff.next_delay() <= ceilings[-1]
    assert ceilings == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    backoff.reset()
    assert backoff.ceiling() == 1.0


def test_full_jitter_spreads_over_the_whole_range() -> None:
    # Equal jitter would never go below half the ceiling; full jitter must.
    backoff = Backoff(10.0, 10.0, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(2_000)]
    assert min(delays) < 1.0
    assert max(delays) > 9.0
    assert sum(d < 5.0 for d in delays) == pytest.approx(1_000, rel=0.1)


def test_a_long_outage_does_not_overflow() -> None:
    backoff = Backoff(0.2, 30.0)
    backoff.failures = 10_000
    assert backoff.ceiling() == 30.0


def test_backoff_refuses_an_impossible_range() -> None:
    with pytest.raises(ValueError, match="first_s"):
        Backoff(5.0, 1.0)


def test_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    bucket = TokenBucket.full(rate=2.0, burst=4.0, now=100.0)
    assert all(bucket.take(100.0) for _ in range(4))
    assert not bucket.take(100.0)
    assert bucket.wait_s() == pytest.approx(0.5)
    assert bucket.take(100.5)
    assert bucket.refill(1_000.0) == 4.0  # never above the burst
    assert bucket.take(1_000.0, 3.0)
    assert not bucket.take(1_000.0, 2.0)  # nothing taken when not enough
    assert bucket.tokens == pytest.approx(1.0)


def test_a_clock_stepped_back_neither_refills_nor_drains() -> None:
    bucket = TokenBucket.full(rate=1.0, burst=2.0, now=50.0)
    assert bucket.take(50.0, 2.0)
    assert bucket.refill(10.0) == 0.0
    assert bucket.refill(51.0) == pytest.approx(1.0)


def test_keyed_buckets_limit_each_key_alone() -> None:
    buckets = KeyedBuckets(rate=1.0, burst=2.0)
    assert buckets.take("a", 0.0) == 0.0
    assert buckets.take("a", 0.0) == 0.0
    assert buckets.take("a", 0.0) == pytest.approx(1.0)
    assert buckets.take("b", 0.0) == 0.0  # a flooding key does not slow the others


def test_keyed_buckets_forget_idle_keys_first_and_stay_bounded() -> None:
    buckets = KeyedBuckets(rate=1.0, burst=1.0, max_keys=3)
    buckets.take("busy", 0.0)
    buckets.take("idle", 0.0)
    buckets.take("other", 0.0)
    # at t=0.5 nobody is full again: all are forgotten rather than growing past the bound
    buckets.take("new", 0.5)
    assert len(buckets) == 1
    buckets.take("a", 10.0)
    buckets.take("b", 10.0)
    assert buckets.take("busy2", 10.5) == 0.0
    assert len(buckets) <= 3


def test_a_rate_of_zero_means_no_limit() -> None:
    buckets = KeyedBuckets(rate=0.0, burst=1.0)
    assert all(buckets.take("a", 0.0) == 0.0 for _ in range(100))
