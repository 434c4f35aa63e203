"""How the reconnect schedule spreads a crowd: full jitter (ours) against equal jitter.

N clients lose the broker at t=0 and retry; the broker accepts at most `capacity` connections
per 100 ms slot and refuses the rest (a restarted broker, a load balancer's limit). Counts the
attempts made and the time until every client is back. Deterministic (seeded), no services.

    .venv/bin/python bench/backoff_spread.py [--clients 2000] [--capacity 50] [--runs 20]
"""

from __future__ import annotations

import argparse
import heapq
import random
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streetsense.backoff import full_jitter

SLOT_S = 0.1
FIRST_S, LONGEST_S = 1.0, 60.0


def equal_jitter(failures: int, first_s: float, longest_s: float, rng: random.Random) -> float:
    """The schedule three of our five copies drew: half the ceiling fixed, half random."""
    ceiling = min(longest_s, first_s * 2.0 ** max(failures - 1, 0))
    return ceiling / 2 + rng.uniform(0.0, ceiling / 2)


Schedule = Callable[[int, float, float, random.Random], float]


def run(schedule: Schedule, clients: int, capacity: int, seed: int) -> tuple[int, float, int]:
    """Return (attempts, seconds until every client is connected, most attempts in a slot
    after the first second)."""
    rng = random.Random(seed)
    # every client tries once at once, then after its schedule's delay
    pending = [(0.0, client, 0) for client in range(clients)]
    heapq.heapify(pending)
    accepted: dict[int, int] = {}
    per_slot: dict[int, int] = {}
    attempts = 0
    last = 0.0
    while pending:
        at, client, failures = heapq.heappop(pending)
        attempts += 1
        slot = int(at / SLOT_S)
        per_slot[slot] = per_slot.get(slot, 0) + 1
        if accepted.get(slot, 0) < capacity:
            accepted[slot] = accepted.get(slot, 0) + 1
            last = max(last, at)
            continue
        failures += 1
        delay = schedule(failures, FIRST_S, LONGEST_S, rng)
        heapq.heappush(pending, (at + delay, client, failures))
    # the first slot holds every client's first try whatever the schedule
    peak = max((n for slot, n in per_slot.items() if slot * SLOT_S >= 1.0), default=0)
    return attempts, last, peak


def main() -> int:
    """Print attempts and completion time of both schedules, medians over seeded runs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=2_000)
    parser.add_argument("--capacity", type=int, default=50, help="connections per 100 ms")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    print(f"{args.clients} clients, broker takes {args.capacity} per 100 ms, {args.runs} runs")
    results = {}
    for name, schedule in (("full jitter", full_jitter), ("equal jitter", equal_jitter)):
        runs = [run(schedule, args.clients, args.capacity, seed) for seed in range(args.runs)]
        attempts = statistics.median(a for a, _, _ in runs)
        done = statistics.median(d for _, d, _ in runs)
        peak = statistics.median(p for _, _, p in runs)
        results[name] = (attempts, done)
        print(
            f"{name:>13}: median {attempts:,.0f} attempts, all back after {done:.1f} s, "
            f"at most {peak:,.0f} attempts in a 100 ms slot after the first second"
        )
    full, equal = results["full jitter"], results["equal jitter"]
    print(f"full/equal: attempts {full[0] / equal[0]:.2f}, time {full[1] / equal[1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
