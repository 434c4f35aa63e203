"""Run every data set x protocol of issue 13 and print the goal table.

Usage: python bench/forecast_goals.py [--model auto,anchored] [--only SUBSTRING] [--json OUT.json]

Each case writes its data set as a backtest CSV, reads and screens it exactly as
`streetsense forecast backtest` does, and backtests the model against persistence and weekly
seasonal naive from the same origins, on the points all of them forecast. Cases are grouped by
role: `dev` is what models are developed on, `check` a city they were not tuned on, `special`
stretches chosen for the special days they hold, `stress` weeks where demand changed week
to week (for the bands), `holdout` the last months of Gießen, looked at
only to confirm. Goals (issue 13):
- parking: MAE at least 12% below the better of persistence and weekly seasonal naive;
- traffic: at least 12% below persistence pooled, 15% at 60 min;
- 80% bands: 75-85% pooled, at least 70% at every step.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from analytics.backtest import Backtest, backtest
from analytics.calendar_file import read_periods
from analytics.csvio import parse_zone, read_csv_capacities
from analytics.panel import BoolArray, Panel
from analytics.quality import screen
from bench.forecast_sets import DataSet

BASELINES = ("naive", "snaive_week")
logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Case:
    """One data set under one protocol: grid step, steps ahead, origins (count, spacing)."""

    name: str
    role: str
    kind: str  # 'parking' or 'traffic'
    data: DataSet
    step_min: int
    horizon: int
    folds: int
    stride: int
    timezone: str


GIESSEN = "Europe/Berlin"
AARHUS = "Europe/Copenhagen"
# Public holidays of each city's region: Gießen is in Hesse, Aarhus in Denmark.
HOLIDAYS = {GIESSEN: "DE-HE", AARHUS: "DK"}
# School holidays as each city would supply them (`--special-days`), written from the published
# dates: Hesse's from its ministry of education (the `holidays` library has the same), Denmark's
# autumn week (42) and summer holiday as Danish schools keep them (Aarhus's own 2014 plan was
# not found).
SPECIAL_DAYS = {
    GIESSEN: Path(__file__).parent / "data" / "hessen-school-holidays.ics",
    AARHUS: Path(__file__).parent / "data" / "denmark-school-holidays-2014.csv",
}
CASES = (
    # Gießen before its 40-day outage: what the models are developed on.
    Case("giessen-30min-dayonly-10w", "dev", "parking",
         DataSet("g-dev-10w", "giessen", "2024-04-14", "2024-06-24"), 30, 18, 84, 6, GIESSEN),
    Case("giessen-15min-4w", "dev", "parking",
         DataSet("g-dev-4w", "giessen", "2024-05-27", "2024-06-24"), 15, 8, 56, 24, GIESSEN),
    Case("giessen-5min-4w", "dev", "parking",
         DataSet("g-dev-4w", "giessen", "2024-05-27", "2024-06-24"), 5, 12, 56, 72, GIESSEN),
    # Aarhus: a city the models were not tuned on.
    Case("aarhus-parking-30min", "check", "parking",
         DataSet("a-park", "aarhus_parking"), 30, 18, 84, 6, AARHUS),
    Case("aarhus-parking-30min-dayonly-10w", "check", "parking",
         DataSet("a-park-day", "aarhus_parking", "2014-08-26", "2014-11-05", day_only=True),
         30, 18, 84, 6, AARHUS),
    Case("aarhus-flow-5min", "check", "traffic",
         DataSet("a-flow", "aarhus_flow"), 5, 12, 96, 37, AARHUS),
    Case("aarhus-speed-5min", "check", "traffic",
         DataSet("a-speed", "aarhus_speed"), 5, 12, 96, 37, AARHUS),
    Case("aarhus-speed-5min-1w", "check", "traffic",
         DataSet("a-speed-1w", "aarhus_speed", "2014-09-20", "2014-10-01"), 5, 12, 24, 37, AARHUS),
    # Special days in the horizon and in the history (public holidays, school holidays), on
    # Gießen's months before the holdout: Corpus Christi (30 May) ahead with five holidays and
    # the Easter school holidays behind; New Year's Day ahead from within the Christmas school
    # holidays with Christmas behind. Chosen for their calendar, not tuned on.
    Case("giessen-30min-dayonly-corpus-christi", "special", "parking",
         DataSet("g-spec-may", "giessen", "2024-03-01", "2024-06-01"), 30, 18, 84, 6, GIESSEN),
    Case("giessen-30min-dayonly-new-year", "special", "parking",
         DataSet("g-spec-jan", "giessen", "2023-10-24", "2024-01-06"), 30, 18, 84, 6, GIESSEN),
    # Stress for the bands: demand that changes week to week, the bands fitted on calmer weeks
    # (a hidden recording's busy pre-holiday weeks covered 70%). Chosen by calendar before any
    # run: Gießen's weeks before Christmas 2023 (the origins from 12 Dec to the last shopping
    # Saturday, history from late October), and Aarhus's weeks after the summer holiday 2014
    # (the origins from 12 Aug, when schools and offices came back, history in the holiday).
    Case("giessen-30min-dayonly-pre-christmas", "stress", "parking",
         DataSet("g-stress-dec", "giessen", "2023-10-24", "2023-12-24"), 30, 18, 84, 6, GIESSEN),
    Case("aarhus-parking-30min-dayonly-after-summer", "stress", "parking",
         DataSet("a-stress-aug", "aarhus_parking", "2014-06-13", "2014-08-23", day_only=True),
         30, 18, 84, 6, AARHUS),
    # The last months of Gießen: looked at only to confirm, never to tune.
    Case("giessen-30min-dayonly-10w-holdout", "holdout", "parking",
         DataSet("g-hold-10w", "giessen", "2024-10-06", "2024-12-21"), 30, 18, 84, 6, GIESSEN),
    Case("giessen-15min-4w-holdout", "holdout", "parking",
         DataSet("g-hold-4w", "giessen", "2024-11-09", "2024-12-07"), 15, 8, 56, 24, GIESSEN),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Goals:
    """One case's figures against the goals."""

    case: str
    kind: str
    model: str
    mae: float
    baseline_mae: dict[str, float]
    gain: float
    gain_last_step: float
    gain_steps: tuple[float, ...]
    coverage: float
    coverage_steps: tuple[float, ...]
    width: float
    width_steps: tuple[float, ...]
    interval_score: float
    points: int
    points_steps: tuple[int, ...]
    empty_origins: int
    seconds: float

    @property
    def accuracy_met(self) -> bool:
        """Return whether the accuracy goal of the case's kind is met."""
        return self.gain >= 0.12 and (self.kind == "parking" or self.gain_last_step >= 0.15)

    @property
    def worst_step_coverage(self) -> float:
        """Return the lowest coverage of a step that holds points (a step without is not
        judged: Gießen's readings every 5-22 min leave some 5-minute steps without truth)."""
        return float(np.nanmin(self.coverage_steps))

    @property
    def bands_met(self) -> bool:
        """Return whether the band goal is met (75-85% pooled, >= 70% per step)."""
        return 0.75 <= self.coverage <= 0.85 and self.worst_step_coverage >= 0.70


def judge(case: Case, result: Backtest, model: str, seconds: float) -> Goals:
    """Return the case's figures: gains against the baselines the goal names."""
    pooled = {name: acc.pooled()["mae"] for name, acc in result.scores.items()}
    steps = {name: acc.reduce(0)["mae"] for name, acc in result.scores.items()}
    if case.kind == "parking":
        reference = min(pooled[b] for b in BASELINES)
        reference_steps = np.fmin(steps["naive"], steps["snaive_week"])
    else:
        reference = pooled["naive"]
        reference_steps = steps["naive"]
    gain_steps = 1.0 - steps[model] / reference_steps
    per_step = result.scores[model].reduce(0)
    pooled_model = result.scores[model].pooled()
    return Goals(
        case=case.name,
        kind=case.kind,
        model=model,
        mae=pooled[model],
        baseline_mae={b: pooled[b] for b in BASELINES},
        gain=1.0 - pooled[model] / reference,
        gain_last_step=float(gain_steps[-1]),
        gain_steps=tuple(float(g) for g in gain_steps),
        coverage=pooled_model["coverage80"],
        coverage_steps=tuple(float(c) for c in per_step["coverage80"]),
        width=pooled_model["width80"],
        width_steps=tuple(float(w) for w in per_step["width80"]),
        interval_score=pooled_model["interval80"],
        points=int(result.scores[model].sums["count"].sum()),
        points_steps=tuple(int(c) for c in result.scores[model].sums["count"].sum(axis=0)),
        empty_origins=len(result.empty),
        seconds=seconds,
    )


def run_case(
    case: Case, names: list[str], workdir: Path, holidays: bool = True, special: bool = True
) -> list[Goals]:
    """Write, read, screen and backtest one case; judge each named model."""
    path = case.data.write(workdir / f"{case.data.name}.csv")
    zone = parse_zone(case.timezone)
    panel, capacities = read_csv_capacities(path, case.step_min * 60, zone)
    screened = screen(panel)
    periods = read_periods(SPECIAL_DAYS[case.timezone]) if special else ()
    started = time.perf_counter()
    models = [*BASELINES, *(m for m in names if m not in BASELINES)]
    result = backtest(
        screened.panel,
        models,
        horizon=case.horizon,
        folds=case.folds,
        stride=case.stride,
        timezone=case.timezone,
        holidays=HOLIDAYS[case.timezone] if holidays else "",
        periods=periods,
        capacities=capacities,
    )
    seconds = time.perf_counter() - started
    unjudged(result, unchanging(screened.panel), screened.panel.ids)
    return [judge(case, result, model, seconds) for model in names]


def unchanging(panel: Panel) -> BoolArray:
    """Return True for each series whose readings are all one value (a stuck counter)."""
    stuck = np.zeros(panel.n_series, dtype=bool)
    for i in range(panel.n_series):
        values = panel.values[panel.indptr[i] : panel.indptr[i + 1]]
        values = values[np.isfinite(values)]
        stuck[i] = values.size > 0 and bool((values == values[0]).all())
    return stuck


def unjudged(result: Backtest, rows: BoolArray, ids: tuple[str, ...]) -> None:
    """Leave series out of every model's scores (they are still fitted with the others).

    A counter stuck on one value the whole time (two of Gießen's nine: a day-only feed breaks
    the run every night, so screening keeps it) is forecast exactly by every model; its points
    left gains unchanged but counted as hits for any band, 20% of Gießen's 15-minute points.
    """
    for series_id in np.asarray(ids)[rows]:
        logger.warning("%s: one value throughout; fitted, but not judged", series_id)
    for accumulator in result.scores.values():
        for sums in accumulator.sums.values():
            sums[rows] = 0.0


def table(rows: list[tuple[Case, Goals]]) -> str:
    """Return the goal table as Markdown."""
    lines = [
        "| case | role | model | MAE | naive | snaive_week | gain vs goal's baseline | "
        "gain at last step | worst step gain | coverage80 | worst step coverage | band width | "
        "points | "
        "fewest points at a step | goals |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case, g in rows:
        met = ("accuracy" if g.accuracy_met else "") + (" bands" if g.bands_met else "")
        lines.append(
            f"| {case.name} | {case.role} | {g.model} | {g.mae:.3f} | "
            f"{g.baseline_mae['naive']:.3f} | "
            f"{g.baseline_mae['snaive_week']:.3f} | {g.gain:+.1%} | {g.gain_last_step:+.1%} | "
            f"{np.nanmin(g.gain_steps):+.1%} | {g.coverage:.1%} | {g.worst_step_coverage:.1%} | "
            f"{g.width:.2f} | {g.points} | {min(c for c in g.points_steps if c > 0)} | "
            f"{met.strip() or 'none'} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    """Run the selected cases and print the table (and per-step figures with -v)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="auto", help="model(s) to judge, comma-separated")
    parser.add_argument("--only", default="", help="run cases whose name contains this")
    parser.add_argument(
        "--role", default="", help="run cases of this role (dev, check, special, stress, holdout)"
    )
    parser.add_argument("--json", type=Path, default=None, help="write every figure here")
    parser.add_argument(
        "--no-holidays", action="store_true", help="do not give the models the public holidays"
    )
    parser.add_argument(
        "--no-special-days",
        action="store_true",
        help="do not give the models the cities' school holidays (bench/data)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print per-step figures")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    logger.setLevel(logging.WARNING)  # which series are not judged, without the screening notes
    rows = []
    with tempfile.TemporaryDirectory(prefix="goals-") as tmp:
        for case in CASES:
            if args.only not in case.name or (args.role and case.role != args.role):
                continue
            judged = args.model.split(",")
            chosen = run_case(
                case, judged, Path(tmp), not args.no_holidays, not args.no_special_days
            )
            for goals in chosen:
                rows.append((case, goals))
                print(
                    f"{case.name} {goals.model}: gain {goals.gain:+.1%}, coverage "
                    f"{goals.coverage:.1%}, width {goals.width:.2f}, interval score "
                    f"{goals.interval_score:.2f} ({goals.seconds:.0f} s)",
                    file=sys.stderr,
                )
                if args.verbose:
                    print(
                        "  gain per step " + " ".join(f"{g:+.2f}" for g in goals.gain_steps)
                        + "\n  coverage per step "
                        + " ".join(f"{c:.2f}" for c in goals.coverage_steps),
                        file=sys.stderr,
                    )  # fmt: skip
    print(table(rows))
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(g) for _, g in rows], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
