"""The data behind every chart, by name, and its serialisation to CSV or Parquet."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import pandas as pd

from dashboard import data
from dashboard.controls import TimeRange
from streetsense.csvcells import csv_cell


@dataclass(frozen=True, slots=True)
class Dataset:
    """One exportable data set: what it is keyed by and how to read it."""

    label: str
    keyed_by: str  # "lot", "segment" or "" (whole city)
    read: Callable[[str, TimeRange, tuple[str, ...]], pd.DataFrame]


DATASETS: Final = {
    d.label: d
    for d in (
        Dataset("Occupancy history", "lot",
                lambda u, s, ids: data.occupancy(u, ids, s.start, s.end, s.export_tier)),
        Dataset("Hour-of-week occupancy", "lot",
                lambda u, s, ids: data.hour_of_week(u, ids, s.start, s.end, s.timezone)),
        Dataset("Parking pressure", "lot",
                lambda u, s, ids: data.time_above(u, ids, s.start, s.end, 0.85)),
        Dataset("Turnover and dwell", "lot",
                lambda u, s, ids: data.turnover(u, ids, max(s.start, s.end - data.TURNOVER_WINDOW),
                                                s.end)),
        Dataset("Flow and speed history", "segment",
                lambda u, s, ids: data.flow(u, ids, s.start, s.end, s.export_tier)),
        Dataset("Peak-hour profile", "segment",
                lambda u, s, ids: data.peak_profile(u, ids, s.start, s.end, s.timezone)),
        Dataset("Congestion ranking", "",
                lambda u, s, ids: data.congestion(u, s.start, s.end, s.tier, 1_000_000)),
        Dataset("Lots now", "", lambda u, s, ids: data.lots_now(u)),
        Dataset("Segments now", "", lambda u, s, ids: data.segments_now(u)),
        Dataset("Devices", "", lambda u, s, ids: data.device_health(u, 1_000_000)),
        Dataset("Rejected messages by reason", "",
                lambda u, s, ids: data.rejections(u, s.start, s.end)),
        Dataset("Data freshness", "", lambda u, s, ids: data.freshness(u)),
    )
}  # fmt: skip


def to_csv(frame: pd.DataFrame) -> bytes:
    """Serialise a frame as UTF-8 CSV with ISO 8601 times, no cell a spreadsheet would run."""
    # CRLF line ends (RFC 4180) make pandas quote any cell holding a line break.
    text: str = safe_for_csv(frame).to_csv(
        index=False, date_format="%Y-%m-%dT%H:%M:%S%z", lineterminator="\r\n"
    )
    return text.encode()


def safe_for_csv(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a copy whose text and boolean cells are written as streetsense.csvcells says."""
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        kind = values.dtype
        is_bool = pd.api.types.is_bool_dtype(kind)
        if not is_bool and (
            pd.api.types.is_numeric_dtype(kind) or pd.api.types.is_datetime64_any_dtype(kind)
        ):
            continue  # numbers and times are written by pandas, never as text
        out[column] = values.astype(object).map(_cell, na_action="ignore")
    return out


def _cell(value: object) -> object:
    # numpy scalars (numpy.bool_) become Python ones, which csv_cell knows.
    item = getattr(value, "item", None)
    return csv_cell(item() if callable(item) else value)


def to_parquet(frame: pd.DataFrame) -> bytes:
    """Serialise a frame as Parquet (pyarrow), keeping types and time zones."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False, engine="pyarrow")
    return buffer.getvalue()
