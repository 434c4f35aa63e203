"""The fast path decodes exactly as the kernel does, or steps aside."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.fastdecode import fast_decode
from streetsense.errors import PayloadError
from streetsense.kinds import Stream
from streetsense.readings import Reading, decode_readings, encode_readings

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


def kernel(payload: bytes, stream: Stream) -> Any:
    try:
        return decode_readings(payload, "d1", stream, now=NOW)
    except (PayloadError, OverflowError) as exc:
        return exc


@settings(max_examples=600, deadline=None)
@given(st.lists(records, min_size=1, max_size=6), st.sampled_from(list(Stream)))
def test_fast_path_agrees_with_the_kernel(pack: list[dict[str, Any]], stream: Stream) -> None:
    payload = json.dumps(pack).encode()
    fast = fast_decode(payload, "d1", stream, NOW)
    if fast is not None:
        # When the fast path answers, the answer is the kernel's, without rejections.
        assert fast == kernel(payload, stream)
        assert not fast.rejections


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
    fast = fast_decode(payload, "d1", Stream.PARKING, NOW)
    assert fast is not None
    assert fast == kernel(payload, Stream.PARKING)
    assert fast.seq_floor == 3


@pytest.mark.parametrize(
    "payload",
    [
        b'[{"n":"occupied","vb":true,"vb":false}]',  # duplicate keys: the last one wins in both
        b'[{"n":"battery","v":1e400}]',
        b'[{"n":"battery","v":' + str(10**30).encode() + b"}]",
        b' [{"n":"battery","v":3.3}]',
        b'[{"n":"battery","v":3.3,"u":""}]',
        b'[{"bn":"d1/","bt":1763884800.123},{"n":"battery","v":3.3,"t":0.5}]',
    ],
)
def test_edge_cases_agree(payload: bytes) -> None:
    fast = fast_decode(payload, "d1", Stream.STATUS, NOW)
    if fast is not None:
        assert fast == kernel(payload, Stream.STATUS)
