"""What the DATEX II traffic forecast publication costs to build, against our JSON.

Usage: .venv/bin/python bench/feeds_datex2_traffic.py [--segments 500 5000] [--runs 3]

For each city size, builds synthetic segments (three points each, a fresh bucket) with stored
flow and speed runs of 36 five-minute steps and their anchors, then times, per horizon (60 and
120 min): re-anchoring every segment's steps (`feeds.forecast_view.segment_steps`, what the
JSON `/forecast` endpoint does for one segment) and writing them as JSON (orjson), the
baseline of the same run; and writing the DATEX II `ElaboratedDataPublication` of the same
steps, plus its gzip copy. Medians of `--runs`. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from feeds.datex2_traffic import SegmentForecast, forecast_document  # noqa: E402
from feeds.forecast_view import Curve, segment_steps  # noqa: E402
from feeds.model import NO_FORECAST, SegmentView, Unavailable  # noqa: E402
from store import forecast_anchoring  # noqa: E402

STEPS = 36
NONE = Unavailable("no_data", "no data")


def _curve(bucket: datetime, values: list[float], band: float, half_life: float) -> Curve:
    start = bucket.timestamp()
    times = [start + 300 * i for i in range(1, STEPS + 1)]
    stored = forecast_anchoring.curve(
        times, values, [v - band for v in values], [v + band for v in values],
        (bucket, values[0] - band, half_life),
    )  # fmt: skip
    return Curve(stored, bucket, 300)


def _city(count: int, bucket: datetime) -> list[SegmentView]:
    line = ((10.19, 56.165), (10.2, 56.1655), (10.205, 56.166))

    def one(index: int) -> SegmentView:
        return SegmentView(
            f"segment-{index}", "S", "east", "a", line, 50, 1000, bucket, 21.0, 31.5, 10.0,
            False, NO_FORECAST,
        )  # fmt: skip

    return [one(i) for i in range(count)]


def _steps(
    segments: list[SegmentView], flow: Curve, speed: Curve, now: datetime, horizon: int
) -> list[SegmentForecast]:
    return [
        SegmentForecast(s, segment_steps(s, flow, speed, NONE, now, horizon, 5)) for s in segments
    ]


def _median(runs: int, work: Callable[[], object]) -> tuple[float, object]:
    times, out = [], None
    for _ in range(runs):
        started = time.perf_counter()
        out = work()
        times.append(time.perf_counter() - started)
    return statistics.median(times), out


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--segments", type=int, nargs="+", default=[500, 5000])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    now = datetime.now(UTC).replace(microsecond=0)
    bucket = datetime.fromtimestamp(now.timestamp() // 300 * 300, UTC) - timedelta(minutes=5)
    flow = _curve(bucket, [20.0 + i / 2 for i in range(STEPS)], 3.0, 900.0)
    speed = _curve(bucket, [40.0] * STEPS, 5.0, 600.0)
    print("| segments | horizon | steps + JSON (s) | steps + DATEX II (s) | ratio | "
          "DATEX II (MB) | gzip (s) | gzipped (MB) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for count in args.segments:
        segments = _city(count, bucket)
        for horizon in (60, 120):
            json_s, _ = _median(
                args.runs,
                lambda: [
                    orjson.dumps(f.steps)
                    for f in _steps(segments, flow, speed, now, horizon)  # noqa: B023
                ],
            )
            datex_s, body = _median(
                args.runs,
                lambda: forecast_document(
                    _steps(segments, flow, speed, now, horizon),  # noqa: B023
                    now, country="DK", publisher="City",
                ),
            )  # fmt: skip
            assert isinstance(body, bytes)
            document = body
            gzip_s, packed = _median(args.runs, lambda: gzip.compress(document, 5, mtime=0))  # noqa: B023
            assert isinstance(packed, bytes)
            print(f"| {count:,} | {horizon} | {json_s:.2f} | {datex_s:.2f} | "
                  f"{datex_s / json_s:.2f} | {len(body) / 1e6:.1f} | {gzip_s:.2f} | "
                  f"{len(packed) / 1e6:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
