"""The `streetsense forecast` command; imports only the standard library until it runs."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from analytics.backtest import Backtest
    from analytics.calendar_file import Period
    from analytics.panel import Panel

logger = logging.getLogger(__name__)

EXIT_USAGE = 2
_COLUMNS = ("mae", "rmse", "mape", "mase", "coverage80")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `forecast backtest` to the `streetsense` command."""
    forecast = subparsers.add_parser("forecast", help="evaluate forecasting models offline")
    actions = forecast.add_subparsers(dest="forecast_command", metavar="ACTION", required=True)
    backtest = actions.add_parser(
        "backtest",
        help="rolling-origin backtest of every model on a CSV of series",
        description="INPUT.csv has the header series_id,timestamp,value (optionally capacity), "
        "in any case, separated by ',', ';', tab or '|' (with any but ',', numbers may use a "
        "decimal comma); "
        "timestamps are ISO 8601, without an offset taken as local time in --timezone. "
        "capacity, when given, bounds forecasts and bands to [0, capacity] (clipping) and "
        "screens readings: values outside it are masked as gaps, and a series above it in more "
        "than 20%% of readings is left out as a broken counter; a series whose capacity "
        "changed lastingly (a level 10%% or more apart, held a day) and whose readings moved "
        "with it (15%% or more) is fitted, from each "
        "origin, only since its last change before it. Every model is scored on the "
        "points all of them forecast, from origins spread over every time of day.",
    )
    backtest.add_argument("input", type=Path, metavar="INPUT.csv")
    backtest.add_argument("--freq", required=True, help="grid step, e.g. 5min, 30min, 1h")
    backtest.add_argument(
        "--columns",
        default="",
        help="the file's names for our columns, e.g. "
        "series_id=garagecode,timestamp=updatetime,value=vehiclecount,capacity=totalspaces",
    )
    backtest.add_argument(
        "--horizon",
        required=True,
        help="how far ahead each origin forecasts: steps (12) or a duration (9h, 90min, 1d)",
    )
    backtest.add_argument(
        "--folds",
        type=int,
        default=None,
        help="number of origins (default: enough to cover the last 14 days)",
    )
    backtest.add_argument(
        "--stride",
        default=None,
        help="steps (6) or time (3h) between origins (default: about 3 h, shifted so that "
        "origins fall at every time of day in turn; with --folds, wider so that the origins "
        "span the last 14 days or as much of them as the data allow)",
    )
    backtest.add_argument("--season-days", type=int, default=7, help="season length in days")
    backtest.add_argument(
        "--timezone",
        default="UTC",
        help="IANA zone (e.g. Europe/Copenhagen) in which times of day and days of week are "
        "counted, so daily patterns stay put across daylight saving changes; timestamps "
        "without an offset are read in it (default UTC)",
    )
    backtest.add_argument(
        "--holidays",
        default="",
        help="country (DK) or country-subdivision (DE-HE) whose public holidays the models "
        "leave out of the history when the data show them unlike ordinary days (default: none)",
    )
    backtest.add_argument(
        "--special-days",
        type=Path,
        default=None,
        metavar="FILE",
        help="an iCalendar (.ics: VEVENTs with DTSTART and DTEND dates, CATEGORIES as the kind) "
        "or CSV (.csv: name,start,end[,kind], end the last day) file of the city's school "
        "holidays and events; the models estimate each kind's level from the history and use "
        "it only where the history shows it (default: none)",
    )
    backtest.add_argument(
        "--output", type=Path, default=None, help="write pooled and per-step JSON here"
    )
    backtest.add_argument(
        "--workers",
        type=int,
        default=0,
        help="threads each fit runs on (default 0: one per core this process may use, at "
        "most 8); the results are the same whatever the number",
    )
    backtest.set_defaults(handler=run_backtest)


def register_job(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `analytics run` to the `streetsense` command."""
    analytics = subparsers.add_parser("analytics", help="the scheduled forecast job")
    actions = analytics.add_subparsers(dest="analytics_command", metavar="ACTION", required=True)
    run = actions.add_parser(
        "run",
        help="refresh rollups, refit and store forecasts (24 h parking, 3 h traffic) in a loop",
    )
    run.add_argument("--once", action="store_true", help="run one round and exit")
    run.add_argument(
        "--interval",
        type=float,
        default=None,
        help="seconds between rounds (default: analytics.interval_s of the settings)",
    )
    run.set_defaults(handler=run_job)


def run_job(args: argparse.Namespace) -> int:
    """Run the forecast job once or until SIGINT/SIGTERM."""
    from datetime import datetime  # noqa: PLC0415

    import psycopg  # noqa: PLC0415

    from analytics.job import run_forever, run_once  # noqa: PLC0415
    from store import rollups  # noqa: PLC0415
    from store.db import connect, require_url  # noqa: PLC0415
    from streetsense.config import load_settings  # noqa: PLC0415

    settings = load_settings(getattr(args, "config", None))
    url = require_url(settings.database)
    timezone = _city_timezone(settings.city.timezone)
    holidays = _city_holidays(settings.city.country)
    periods = city_special_days(settings.city.special_days)

    def refresh(conn: psycopg.Connection, now: datetime) -> None:
        rollups.refresh(conn, settings, until=now)

    def open_connection() -> psycopg.Connection:
        return connect(url, autocommit=True, timeout_s=settings.database.connect_timeout_s)

    if args.once:
        with open_connection() as conn:
            runs = run_once(
                conn, refresh, timezone, settings=settings.analytics, holidays=holidays,
                periods=periods,
            )  # fmt: skip
        logger.info("analytics job: stored runs %s", runs)
        return 0
    interval = settings.analytics.interval_s if args.interval is None else args.interval
    run_forever(
        open_connection, interval, refresh, timezone=timezone, settings=settings.analytics,
        holidays=holidays, periods=periods,
    )  # fmt: skip
    return 0


def _city_holidays(country: str) -> str:
    """Return the country whose public holidays the models use, '' when it has none known."""
    from analytics.special_days import check_region  # noqa: PLC0415

    if not country:
        return ""
    try:
        check_region(country)
    except ValueError as exc:
        logger.warning("city.country: %s; forecasts go on without public holidays", exc)
        return ""
    return country


def city_special_days(name: str) -> tuple[Period, ...]:
    """Return the periods of the city's special-days file (`city.special_days`; '' none).

    Raises:
        ConfigError: the file is unusable; the message names the setting, file, line and fix.
    """
    from analytics.calendar_file import CalendarError, read_periods  # noqa: PLC0415
    from streetsense.errors import ConfigError  # noqa: PLC0415

    if not name.strip():
        return ()
    try:
        periods = read_periods(Path(name.strip()))
    except CalendarError as exc:
        raise ConfigError(
            f"city.special_days: {exc} (or set city.special_days to '' to go without)"
        ) from exc
    kinds = sorted({period.kind for period in periods})
    logger.info("city.special_days: %d periods of %s from %s", len(periods), kinds, name)
    return periods


def _city_timezone(name: str) -> str:
    """Return the city's time zone name after checking it is a known IANA zone."""
    from analytics.localtime import zone_of  # noqa: PLC0415
    from streetsense.errors import ConfigError  # noqa: PLC0415

    try:
        zone_of(name)
    except ValueError as exc:
        raise ConfigError(
            f"city.timezone: {exc} (set it in the settings file or STREETSENSE_CITY_TIMEZONE)"
        ) from exc
    return name


def run_backtest(args: argparse.Namespace) -> int:
    """Read the CSV, backtest every model, print a table and write the JSON."""
    # numpy and scipy load only when a forecast command runs, so `streetsense` starts fast.
    from analytics.backtest import backtest  # noqa: PLC0415
    from analytics.calendar_file import read_periods  # noqa: PLC0415
    from analytics.csvdialect import DialectError, parse_columns  # noqa: PLC0415
    from analytics.csvio import (  # noqa: PLC0415
        InputError,
        parse_freq,
        parse_steps,
        parse_zone,
        read_csv_capacities,
    )
    from analytics.models import MODELS  # noqa: PLC0415
    from analytics.parallel import MOST_REQUESTED  # noqa: PLC0415
    from analytics.quality import screen  # noqa: PLC0415
    from analytics.special_days import check_region  # noqa: PLC0415

    if (args.folds is not None and args.folds < 1) or args.season_days < 1:
        raise InputError("--folds and --season-days must be positive integers")
    if not 0 <= args.workers <= MOST_REQUESTED:
        raise InputError(
            f"--workers must be 0 (one per core) or a number of threads up to {MOST_REQUESTED}"
        )
    step = parse_freq(args.freq)
    horizon = parse_steps(args.horizon, step, "--horizon")
    stride = None if args.stride is None else parse_steps(args.stride, step, "--stride")
    zone = parse_zone(args.timezone)
    if args.holidays:
        try:
            check_region(args.holidays)
        except ValueError as exc:
            raise InputError(f"--holidays: {exc}") from None
    periods = () if args.special_days is None else read_periods(args.special_days)
    try:
        columns = parse_columns(args.columns)
    except DialectError as exc:
        raise InputError(str(exc)) from None
    panel, capacities = read_csv_capacities(args.input, step, zone, columns)
    screened = screen(panel)
    if screened.panel.n_series == 0:
        raise InputError(f"{args.input}: no usable series left after screening")
    models = [m for m in MODELS if not (args.season_days == 1 and m == "snaive_day")]
    result = backtest(
        screened.panel,
        models,
        horizon=horizon,
        folds=args.folds,
        stride=stride,
        season_days=args.season_days,
        timezone=args.timezone,
        holidays=args.holidays,
        periods=periods,
        capacities=capacities,
        workers=args.workers,
    )
    summary = result.summary()
    if not summary["shared_points"]:
        raise InputError(f"{args.input}: {_nothing_scored(result, screened.panel, horizon)}")
    if result.empty:
        logger.warning(
            "%d of %d origins held no truth (night, outage or the end of the data) and scored "
            "nothing",
            len(result.empty),
            result.folds,
        )
    sys.stdout.write(format_table(summary))
    if args.output is not None:
        args.output.write_text(json.dumps(summary, indent=2, allow_nan=False, default=str) + "\n")
        logger.info("wrote %s", args.output)
    return 0


def _nothing_scored(result: Backtest, panel: Panel, horizon: int) -> str:
    """Return why a backtest scored no point, and what to change."""
    span = int(panel.lengths.max(initial=0))
    if not result.origins:
        return (
            f"nothing to score: the longest series spans {span} step{'s' * (span != 1)} of "
            "--freq, not more than "
            f"--horizon ({horizon} steps); give more data or a shorter --horizon"
        )
    if len(result.empty) == len(result.origins):
        return (
            f"nothing to score: none of the {len(result.origins)} origins has a reading in the "
            f"{horizon} steps after it; give more --folds, another --stride or a longer --horizon"
        )
    return (
        "nothing to score: no model forecast any reading after an origin (each series needs "
        "history before the first origin); give more data, fewer --folds or a shorter --horizon"
    )


def format_table(summary: dict[str, Any]) -> str:
    """Return the scores on the shared points as a plain-text table, best model marked."""
    lines = [f"{'model':<15}" + "".join(f"{c:>12}" for c in _COLUMNS) + f"{'points':>9}"]
    for name, scores in summary["models"].items():
        mark = " *" if name == summary["best"] else ""
        cells = "".join(f"{_cell(scores[c]):>12}" for c in _COLUMNS)
        lines.append(f"{name:<15}{cells}{scores['points']:>9}{mark}")
    best = summary["models"][summary["best"]]["per_step"]
    lines.append(f"{summary['best']} per step, MAE: " + " ".join(_cell(v) for v in best["mae"]))
    lines.append(
        f"{summary['best']} per step, coverage80: " + " ".join(_cell(v) for v in best["coverage80"])
    )
    lines.append(
        f"best: {summary['best']}  series: {summary['n_series']}  points: {summary['n_points']}"
        f"  scored on the {summary['shared_points']} points every model forecast"
        f"  origins: {len(summary['origins'])} ({len(summary['empty_origins'])} without truth)"
    )
    return "\n".join(lines) + "\n"


def _cell(value: float | None) -> str:
    """Return a number for the table, '-' when undefined."""
    return "-" if value is None else f"{value:.4f}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the forecast command standalone (`python -m analytics.cli forecast ...`)."""
    from streetsense.errors import StreetsenseError  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="streetsense")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.handler(args))
    except StreetsenseError as exc:
        logger.error("%s", exc)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
