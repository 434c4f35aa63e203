"""Interpretation of SenML records as streetsense readings, and back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from streetsense.kinds import Stream
from streetsense.readings import Reading, decode_readings, encode_readings

NOW = 1_700_000_000.0


def test_gateway_names_carry_spot_ids_and_booleans() -> None:
    payload = (
        b'[{"bn":"gw1/","bt":1700000000,"n":"A1/occupied","vb":true,"seq":7},'
        b'{"n":"A2/occupied","vb":false,"t":1.5,"seq":8}]'
    )
    result = decode_readings(payload, "gw1", Stream.PARKING, now=NOW)
    assert result.rejections == []
    first, second = result.readings
    assert (first.sub_id, first.kind, first.value, first.seq) == ("A1", "occupied", 1.0, 7)
    assert (second.sub_id, second.value) == ("A2", 0.0)
    assert second.observed_at == datetime(2023, 11, 14, 22, 13, 21, 500000, tzinfo=UTC)


def test_units_are_converted_to_canonical() -> None:
    payload = b'[{"n":"mean_speed","u":"m/s","v":10},{"n":"vehicle_count","v":12}]'
    result = decode_readings(payload, "cam-1", Stream.TRAFFIC, now=NOW)
    assert [r.value for r in result.readings] == [pytest.approx(36.0), 12.0]


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (b'{"n":"humidity","v":1}', "not a streetsense reading name"),
        (b'{"n":"battery","v":3.6}', "belongs on the 'status' stream"),
        (b'{"n":"mean_speed","u":"mph","v":30}', "unit 'mph' is not accepted"),
        (b'{"n":"mean_speed","v":900}', "outside its physical range"),
        (b'{"n":"vehicle_count","v":-1}', "outside its physical range"),
        (b'{"n":"a/b/vehicle_count","v":1}', "more than one '/'"),
        (b'{"n":"la+ne/vehicle_count","v":1}', "characters SenML forbids"),
        (b'{"n":"vehicle_count","vb":true}', "needs a numeric value"),
    ],
)
def test_bad_records_are_rejected_alone(record: bytes, reason: str) -> None:
    payload = b'[{"n":"vehicle_count","v":3,"seq":1},' + record.replace(b"}", b',"seq":2}') + b"]"
    if b"+" in record:
        from streetsense.errors import PayloadError

        with pytest.raises(PayloadError, match=reason):
            decode_readings(payload, "cam-1", Stream.TRAFFIC, now=NOW)
        return
    result = decode_readings(payload, "cam-1", Stream.TRAFFIC, now=NOW)
    assert [r.seq for r in result.readings] == [1]
    (rejection,) = result.rejections
    assert (rejection.index, rejection.seq) == (1, 2)
    assert reason in rejection.reason


def test_encode_then_decode_is_identity() -> None:
    moment = datetime(2026, 11, 23, 8, 0, 0, 123000, tzinfo=UTC)
    readings = [
        Reading("gw-9", "occupied", moment, 1.0, sub_id="S-1", seq=41),
        Reading("gw-9", "occupied", moment.replace(second=5), 0.0, sub_id="S-2", seq=42),
        Reading("gw-9", "occupied", moment, 0.0, sub_id="S-1", seq=43, revision=1),
    ]
    for cbor in (False, True):
        payload = encode_readings(readings, cbor=cbor, seq_floor=40)
        result = decode_readings(payload, "gw-9", Stream.PARKING, now=NOW)
        assert result.readings == readings
        assert result.seq_floor == 40


def test_reading_validates_itself() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Reading("d1", "battery", datetime(2026, 1, 1), 3.0)  # noqa: DTZ001
    with pytest.raises(ValueError, match="not a valid id"):
        Reading("d/1", "battery", datetime(2026, 1, 1, tzinfo=UTC), 3.0)
