"""The fast path encodes exactly the rows of the kernel's readings, or steps aside."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.fastdecode import FastRows, fast_rows, forget_names
from store.reading_rows import ReadingRows, epoch_us
from streetsense.errors import PayloadError
from streetsense.kinds import Stream
from streetsense.readings import Interpretation, Reading, decode_readings, encode_readings

NOW = 1_763_884_800.0
NAMES = [
    "occupied",
    "vehicle_count",
    "mean_speed",
    "battery",
    "online",
    "A1/occupied",
    "d1/occupied",
    "d1:battery",
    "x/y/occupied",
    "bogus",
    "L2/detector_occupancy",
    "",
]
UNITS = [None, "km/h", "m/s", "V", "mV", "%", "/", "W", 5]
numbers = st.one_of(
    st.integers(-(2**40), 2**40), st.floats(allow_nan=False, allow_infinity=False), st.booleans()
)
records = st.fixed_dictionaries(
    {},
    optional={
        "bn": st.sampled_from(["", "d1/", "d1:", "gw/", 3]),
        "bt": st.one_of(st.floats(0, 2e9), st.integers(0, 2**31), st.just(-5.0)),
        "n": st.sampled_from(NAMES),
        "v": numbers,
        "vb": st.one_of(st.booleans(), st.just(1)),
        "u": st.sampled_from(UNITS),
        "t": st.one_of(st.floats(-1e3, 1e3), st.integers(-100, 100)),
        "seq": st.one_of(st.integers(-1, 2**64), st.just(True)),
        "seq_floor": st.integers(0, 100),
        "clock_suspect": st.one_of(st.booleans(), st.just(1)),
        "vs": st.just("x"),
    },
)


LATE_S, FUTURE_S = 3600, 300
RECEIVED_AT = datetime.fromtimestamp(NOW, UTC)
WINDOW = (
    epoch_us(RECEIVED_AT),
    epoch_us(RECEIVED_AT) - LATE_S * 1_000_000,
    epoch_us(RECEIVED_AT) + FUTURE_S * 1_000_000,
)


def kernel(payload: bytes, stream: Stream) -> Interpretation | Exception:
    try:
        return decode_readings(payload, "d1", stream, now=NOW)
    except (PayloadError, OverflowError) as exc:
        return exc


def kernel_rows(result: Interpretation) -> ReadingRows:
    """The rows the general ingest path builds from the kernel's readings."""
    return ReadingRows(
        (r.device_id, r.kind, r.sub_id or "", r.observed_at, RECEIVED_AT, r.value, r.seq,
         r.clock_suspect)
        for r in result.readings
    )  # fmt: skip


def fast(payload: bytes, stream: Stream) -> FastRows | None:
    return fast_rows(payload, "d1", stream, NOW, WINDOW)


def assert_same(answer: FastRows, payload: bytes, stream: Stream) -> None:
    result = kernel(payload, stream)
    assert isinstance(result, Interpretation)
    assert not result.rejections
    observed = [r.observed_at for r in result.readings]
    assert all(
        RECEIVED_AT - timedelta(seconds=LATE_S) <= t <= RECEIVED_AT + timedelta(seconds=FUTURE_S)
        for t in observed
    )
    ours = ReadingRows()
    ours.extend("d1", answer.encoded, answer.count, answer.earliest_us)
    assert ours.copy_data() == kernel_rows(result).copy_data()
    assert answer.seqs == [r.seq for r in result.readings if r.seq is not None]
    assert answer.seq_floor == result.seq_floor
    assert ours.earliest() == min(observed)
    assert answer.newest_us == epoch_us(max(observed))


@settings(max_examples=800, deadline=None)
@given(st.lists(records, min_size=1, max_size=6), st.sampled_from(list(Stream)))
def test_fast_path_agrees_with_the_kernel(pack: list[dict[str, Any]], stream: Stream) -> None:
    payload = json.dumps(pack).encode()
    answer = fast(payload, stream)
    if answer is not None:
        # When the fast path answers, the answer is the kernel's, without rejections.
        assert_same(answer, payload, stream)


def test_agent_packs_take_the_fast_path() -> None:
    readings = [
        Reading(
            "d1",
            "occupied",
            decode_readings(b'[{"n":"occupied","vb":true}]', "d1", Stream.PARKING, now=NOW + i)
            .readings[0]
            .observed_at,
            1.0,
            "A1",
            seq=i,
        )
        for i in range(20)
    ]
    payload = encode_readings(readings, seq_floor=3)
    answer = fast(payload, Stream.PARKING)
    assert answer is not None
    assert answer.count == 20
    assert answer.seq_floor == 3
    assert_same(answer, payload, Stream.PARKING)


@pytest.mark.parametrize(
    "payload",
    [
        b'[{"n":"occupied","vb":true,"vb":false}]',  # duplicate keys: the last one wins in both
        b'[{"n":"mean_speed","v":1e400}]',
        b'[{"n":"mean_speed","v":' + str(10**30).encode() + b"}]",
        b' [{"n":"mean_speed","v":33}]',
        b'[{"n":"mean_speed","v":33,"u":""}]',
        b'[{"bn":"d1/","bt":1763884800.123},{"n":"mean_speed","v":33,"t":0.5}]',
        b'[{"n":"mean_speed","v":33,"u":"m/s"}]',
    ],
)
def test_edge_cases_agree(payload: bytes) -> None:
    answer = fast(payload, Stream.TRAFFIC)
    if answer is not None:
        assert_same(answer, payload, Stream.TRAFFIC)


@pytest.mark.parametrize(
    ("payload", "stream", "why"),
    [
        (b'[{"n":"battery","v":3.3}]', Stream.STATUS, "status updates device health"),
        (b'[{"n":"mean_speed","v":900}]', Stream.TRAFFIC, "outside the physical range"),
        (b'[{"n":"occupied","vb":true,"t":1763800000}]', Stream.PARKING, "older than the window"),
        (b'[{"n":"occupied","vb":true,"t":1763899999}]', Stream.PARKING, "in the future"),
        (b'[{"n":"mean_speed","v":33,"u":"furlong"}]', Stream.TRAFFIC, "unknown unit"),
        (b'[{"n":"bad id!/occupied","vb":true}]', Stream.PARKING, "a sub-id the kernel refuses"),
    ],
)
def test_steps_aside_for_what_the_kernel_rejects(payload: bytes, stream: Stream, why: str) -> None:
    assert fast(payload, stream) is None, why


def test_a_count_beyond_the_lots_limit_steps_aside_and_one_within_it_does_not() -> None:
    """A lot's capacity bounds occupied_spaces on the fast path too (asked once per name)."""
    asked: list[str] = []

    def limit(device: str) -> float:
        asked.append(device)
        return 130.0

    def pack(value: float) -> bytes:
        return json.dumps([{"n": "occupied_spaces", "v": value, "t": 0}]).encode()

    forget_names()  # as a registry read does: names are checked against the registry anew
    within = fast_rows(pack(130), "d1", Stream.PARKING, NOW, WINDOW, None, limit)
    assert within is not None
    assert_same(within, pack(130), Stream.PARKING)
    assert fast_rows(pack(131), "d1", Stream.PARKING, NOW, WINDOW, None, limit) is None
    spots = json.dumps([{"n": "A1/occupied", "vb": True}] * 2).encode()
    assert fast_rows(spots, "d1", Stream.PARKING, NOW, WINDOW, None, limit) is not None
    assert asked == ["d1"]  # once, for the name; never for a spot's reading
    forget_names()
    assert fast_rows(pack(131), "d1", Stream.PARKING, NOW, WINDOW) is not None  # no lot known
