"""Series CSVs as planners export them: other delimiters, decimal commas, names, missing marks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from analytics.csvio import InputError, read_csv, read_csv_capacities
from tests.analytics.test_cli import run

START = datetime(2024, 3, 4, tzinfo=UTC)
Row = tuple[str, int, str, str]  # series, half-hour slot, value, capacity
ROWS: list[Row] = [("lot-a", 0, "12.5", "40"), ("lot-a", 1, "", "40"), ("lot-b", 0, "0.25", "1"),
        ("lot-b", 2, "3", "1"), ("lot-a", 2, "7", "40")]  # fmt: skip


def _write(path: Path, header: str, delimiter: str, rows: list[Row]) -> Path:
    lines = [header]
    for series, slot, value, capacity in rows:
        stamp = (START + timedelta(minutes=30 * slot)).isoformat()
        lines.append(delimiter.join((series, stamp, value, capacity)))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _same(left: Path, right: Path) -> None:
    a, a_caps = read_csv_capacities(left, 1800)
    b, b_caps = read_csv_capacities(right, 1800)
    assert a.ids == b.ids
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.capacity, b.capacity)
    assert a_caps is not None and b_caps is not None
    np.testing.assert_array_equal(a_caps.values, b_caps.values)


def test_semicolons_and_decimal_commas_read_like_the_plain_file(tmp_path: Path) -> None:
    plain = _write(tmp_path / "plain.csv", "series_id,timestamp,value,capacity", ",", ROWS)
    european = [(s, t, v.replace(".", ","), c) for s, t, v, c in ROWS]
    for name, delimiter in (("semicolon", ";"), ("tab", "\t")):
        header = delimiter.join(("series_id", "timestamp", "value", "capacity"))
        _same(plain, _write(tmp_path / f"{name}.csv", header, delimiter, european))


def test_header_case_bom_and_column_order_do_not_matter(tmp_path: Path) -> None:
    plain = _write(tmp_path / "plain.csv", "series_id,timestamp,value,capacity", ",", ROWS)
    shouting = tmp_path / "excel.csv"
    text = _write(tmp_path / "x.csv", "Series ID,TimeStamp,VALUE,Capacity", ",", ROWS).read_text()
    shouting.write_text("\ufeff" + text, encoding="utf-8")
    _same(plain, shouting)
    reordered = [(v, c, s, str(START + timedelta(minutes=30 * t))) for s, t, v, c in ROWS]
    other = tmp_path / "other.csv"
    other.write_text(
        "value,capacity,series_id,timestamp\n" + "".join(f"{','.join(r)}\n" for r in reordered)
    )
    _same(plain, other)


@pytest.mark.parametrize("mark", ["NA", "nan", "NULL", "n/a", "None", " "])
def test_common_missing_marks_are_gaps(tmp_path: Path, mark: str) -> None:
    rows = [(s, t, mark if (s, t) == ("lot-a", 1) else v, c) for s, t, v, c in ROWS]
    marked = _write(tmp_path / "marked.csv", "series_id,timestamp,value,capacity", ",", rows)
    _same(_write(tmp_path / "plain.csv", "series_id,timestamp,value,capacity", ",", ROWS), marked)


def test_a_capacity_of_zero_or_below_is_unknown_not_a_bound(tmp_path: Path) -> None:
    rows = [(s, t, v, "0" if s == "lot-a" else c) for s, t, v, c in ROWS]
    rows[0] = ("lot-a", 0, "12.5", "-3108")
    panel = read_csv(
        _write(tmp_path / "in.csv", "series_id,timestamp,value,capacity", ",", rows), 1800
    )
    assert np.isnan(panel.capacity[panel.ids.index("lot-a")])
    assert panel.capacity[panel.ids.index("lot-b")] == 1


def test_capacity_zero_series_is_judged_not_excluded(tmp_path: Path) -> None:
    """Feeds write capacity 0 for 'not known'; such a lot is no broken counter."""
    from tests.analytics.synthetic import seasonal

    source, output = tmp_path / "in.csv", tmp_path / "out.json"
    lines = ["series_id,timestamp,value,capacity"]
    for t, value in enumerate(seasonal(n=1, weeks=3, seed=3)[0]):
        lines.append(f"lot,{(START + timedelta(minutes=30 * t)).isoformat()},{value:.1f},0")
    source.write_text("\n".join(lines) + "\n")
    done = run(str(source), "--freq", "30min", "--horizon", "4", "--folds", "4",
               "--output", str(output))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "capacity of 0 or below taken as unknown" in done.stderr
    assert "excluded" not in done.stderr


def test_columns_named_otherwise_are_mapped_or_named_in_the_error(tmp_path: Path) -> None:
    plain = _write(tmp_path / "plain.csv", "series_id,timestamp,value,capacity", ",", ROWS)
    theirs = _write(
        tmp_path / "aarhus.csv", "garagecode,updatetime,vehiclecount,totalspaces", ",", ROWS
    )
    with pytest.raises(InputError) as caught:
        read_csv(theirs, 1800)
    message = str(caught.value)
    assert "'garagecode', 'updatetime', 'vehiclecount'" in message and "--columns" in message
    mapping = {"series_id": "garagecode", "timestamp": "updatetime", "value": "vehiclecount",
               "capacity": "totalspaces"}  # fmt: skip
    a, _ = read_csv_capacities(plain, 1800)
    b, _ = read_csv_capacities(theirs, 1800, columns=mapping)
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.capacity, b.capacity)


def test_columns_option_end_to_end_and_its_errors(tmp_path: Path) -> None:
    theirs = _write(tmp_path / "in.csv", "garagecode,updatetime,vehiclecount", ",",
                    [(*r[:3], "") for r in ROWS])  # fmt: skip
    mapping = "series_id=garagecode,timestamp=updatetime,value=vehiclecount"
    done = run(str(theirs), "--freq", "30min", "--horizon", "1", "--columns", mapping)
    assert "missing column" not in done.stderr, done.stderr
    for bad, message in (("value", "is not NAME=COLUMN"), ("speed=avg", "'speed' is not one of")):
        done = run(str(theirs), "--freq", "30min", "--horizon", "1", "--columns", bad)
        assert done.returncode == 2 and message in done.stderr
        assert "Traceback" not in done.stderr


def test_a_backtest_that_scores_nothing_says_why_and_fails(tmp_path: Path) -> None:
    short = _write(tmp_path / "in.csv", "series_id,timestamp,value,capacity", ",", ROWS)
    done = run(str(short), "--freq", "30min", "--horizon", "6")
    assert done.returncode == 2, done.stdout
    assert "nothing to score" in done.stderr and "shorter --horizon" in done.stderr
    assert "Traceback" not in done.stderr
