"""Export: the data behind any chart, for the chosen range, as CSV or Parquet."""

from __future__ import annotations

import streamlit as st

from dashboard import controls, data, exports

PREVIEW_ROWS = 100
MAX_SERIES = 200

url, settings = data.page_context()
span = controls.time_range(settings.city.timezone)
st.title("Export")

label = st.selectbox("Data", list(exports.DATASETS), key="dataset")
dataset = exports.DATASETS[label]
ids: tuple[str, ...] = ()
if dataset.keyed_by:
    places = data.lots(url) if dataset.keyed_by == "lot" else data.segments(url)
    key = f"{dataset.keyed_by}_id"
    chosen = st.multiselect(
        "Lots" if dataset.keyed_by == "lot" else "Road segments", list(places[key]),
        default=list(places[key].head(5)), max_selections=MAX_SERIES, key="export_ids",
    )  # fmt: skip
    ids = tuple(sorted(chosen))
    if not ids:
        st.info("Pick at least one.")
        st.stop()
frame = dataset.read(url, span, ids)
times = [c for c in frame.columns if str(frame[c].dtype).startswith("datetime64")]
frame = controls.local(frame, times, settings.city.timezone)
file_format = st.radio("Format", ["CSV", "Parquet"], horizontal=True, key="format")
stem = label.lower().replace(" ", "_").replace("-", "_")
if file_format == "CSV":
    payload, name, mime = exports.to_csv(frame), f"{stem}.csv", "text/csv"
else:
    payload, name, mime = exports.to_parquet(frame), f"{stem}.parquet", "application/octet-stream"
st.download_button(f"Download {name}", payload, file_name=name, mime=mime, type="primary")
st.caption(f"{len(frame):,} rows, {len(payload):,} bytes; times in {settings.city.timezone}.")
st.dataframe(frame.head(PREVIEW_ROWS), hide_index=True)
