"""SenML decoding and encoding against RFC 8428 and its error cases."""

from __future__ import annotations

import json

import cbor2
import pytest

from streetsense.errors import PayloadError
from streetsense.senml import decode_pack, encode_pack

NOW = 1_700_000_000.0

# Examples from RFC 8428 section 5 (decoded, they must resolve as the RFC says).
RFC_SINGLE = b'[{"n":"urn:dev:ow:10e2073a01080063","u":"Cel","v":23.1}]'
RFC_MULTIPLE = b"""[
 {"bn":"urn:dev:ow:10e2073a01080063:","n":"voltage","u":"V","v":120.1},
 {"n":"current","u":"A","v":1.2}]"""
RFC_SERIES = b"""[
 {"bn":"urn:dev:ow:10e2073a0108006:","bt":1.276020076001e+09,
  "bu":"A","bver":5,"n":"voltage","u":"V","v":120.1},
 {"n":"current","t":-5,"v":1.2},
 {"n":"current","t":-4,"v":1.3},
 {"n":"current","t":-3,"v":1.4},
 {"n":"current","t":-2,"v":1.5},
 {"n":"current","t":-1,"v":1.6},
 {"n":"current","v":1.7}]"""
RFC_MULTIPLE_TYPES = b"""[
 {"bn":"urn:dev:ow:10e2073a01080063:","bt":1.320067464e+09,"bu":"%RH","v":20},
 {"u":"lon","v":24.30621},
 {"u":"lat","v":60.07965},
 {"t":60,"v":20.3},
 {"u":"lon","t":60,"v":24.30622},
 {"u":"lat","t":60,"v":60.07965},
 {"t":120,"v":20.7},
 {"u":"lon","t":120,"v":24.30623},
 {"u":"lat","t":120,"v":60.07966},
 {"u":"%EL","t":150,"v":98},
 {"t":180,"v":21.2},
 {"u":"lon","t":180,"v":24.30628},
 {"u":"lat","t":180,"v":60.07967}]"""
RFC_STRING_AND_BOOL = b"""[
 {"bn":"urn:dev:ow:10e2073a01080063:","n":"temp","u":"Cel","v":23.1},
 {"n":"label","vs":"Machine Room"},
 {"n":"open","vb":false},
 {"n":"nfc-reader","vd":"aGkgCg"}]"""
RFC_EXAMPLES = [RFC_SINGLE, RFC_MULTIPLE, RFC_SERIES, RFC_MULTIPLE_TYPES, RFC_STRING_AND_BOOL]


@pytest.mark.parametrize("payload", RFC_EXAMPLES)
def test_rfc_examples_decode(payload: bytes) -> None:
    records = decode_pack(payload, now=NOW)
    assert len(records) == len(json.loads(payload))
    assert all(r.name.startswith("urn:dev:ow:") for r in records)


def test_base_fields_resolve_names_times_and_units() -> None:
    records = decode_pack(RFC_SERIES, now=NOW)
    assert records[0].name == "urn:dev:ow:10e2073a0108006:voltage"
    assert records[0].unit == "V"
    assert records[1].unit == "A"  # from bu
    assert records[1].time == pytest.approx(1.276020076001e09 - 5)
    assert records[-1].value == pytest.approx(1.7)


def test_relative_time_is_relative_to_now() -> None:
    (record,) = decode_pack(b'[{"n":"x","v":1,"t":-10}]', now=NOW)
    assert record.time == NOW - 10


def test_cbor_uses_integer_labels() -> None:
    payload = cbor2.dumps([{-2: "dev/", 0: "battery", 2: 3.7, 6: 1_700_000_000, "seq": 4}])
    (record,) = decode_pack(payload, now=NOW)
    assert (record.name, record.value, record.time, record.seq) == ("dev/battery", 3.7, NOW, 4)


def test_encode_round_trips_in_json_and_cbor() -> None:
    shaped = [
        {"bn": "d/", "bt": NOW, "n": "rssi", "v": -70.0, "seq": 1},
        {"n": "battery", "v": 3.6},
    ]
    for cbor in (False, True):
        records = decode_pack(encode_pack(shaped, cbor=cbor), now=0)
        assert [(r.name, r.value, r.time) for r in records] == [
            ("d/rssi", -70.0, NOW),
            ("d/battery", 3.6, NOW),
        ]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "empty"),
        (b"hello", "neither SenML JSON"),
        (b"[", "not valid JSON"),
        (b"[]", "pack is empty"),
        (b'{"n":"x","v":1}', "must be an array"),
        (b'[{"n":"x","v":NaN}]', "NaN is not a number"),
        (b'[{"n":"x","v":Infinity}]', "Infinity is not a number"),
        (b'[{"n":"x","v":"12"}]', "record 0, field 'v': must be a number"),
        (b'[{"n":"x","v":1},{"n":"y","vb":1}]', "record 1, field 'vb'"),
        (b'[{"n":"x","v":1,"vs":"a"}]', "one value"),
        (b'[{"n":"x"}]', "no value"),
        (b'[{"n":"","v":1}]', "field 'n'"),
        (b'[{"n":"bad name","v":1}]', "characters SenML forbids"),
        (b'[{"n":"x","v":1,"t":1e20}]', "outside years"),
        (b'[{"n":"x","v":1,"foo_":1}]', "must-understand"),
        (b'[{"bver":99,"n":"x","v":1}]', "newer than"),
        (b'[{"n":"x","v":1,"seq":-1}]', "field 'seq'"),
        (b'[{"n":"x","v":1,"rev":-1}]', "field 'rev': must be from 0"),
        (b'[{"n":"x","v":1,"rev":2147483648}]', "field 'rev': must be from 0"),
        (b'[{"n":"x","v":1,"rev":1.5}]', "field 'rev': must be an integer"),
        (b'[{"n":"x","v":1,"rev":true}]', "field 'rev': must be an integer"),
        (b'[{"n":"x","v":true}]', "must be a number"),
        (b'[{"n":"x","v":1' + b"0" * 400 + b"}]", "field 'v': is too large"),
        (b'[{"n":"x","v":1,"t":1' + b"0" * 400 + b"}]", "field 't': is too large"),
        (b"[" * 100_000, "nested too deeply"),
    ],
)
def test_bad_packs_are_refused_with_a_located_reason(payload: bytes, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        decode_pack(payload, now=NOW)


def test_pack_size_is_bounded() -> None:
    pack = json.dumps([{"n": "x", "v": i} for i in range(10_001)]).encode()
    with pytest.raises(PayloadError, match="at most 10000"):
        decode_pack(pack, now=NOW)
