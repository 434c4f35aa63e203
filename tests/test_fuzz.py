"""Property-based fuzzing of every parser that reads outside input: no crash, no hang, and
every rejection names its cause (issue 8, bad input). bench/fuzz_atheris.py runs the long
coverage-guided campaign."""

from __future__ import annotations

import json
import string
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streetsense.config import Settings, load_dataclass
from streetsense.errors import ConfigError, PayloadError, RegistryError, TopicError
from streetsense.kinds import KINDS, Stream, ValueType
from streetsense.readings import Reading, decode_readings, encode_readings
from streetsense.registry import parse_registry
from streetsense.senml import decode_pack
from streetsense.topics import Channel, DeviceTopic, FeedTopic, Topics

FUZZ = settings(max_examples=400, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
NOW = 1_763_884_800.0
LABELS = ["bn", "bt", "bu", "bv", "bs", "bver", "n", "u", "v", "vs", "vb", "vd", "s", "t", "ut",
          "seq", "seq_floor", "clock_suspect", "x_", "other"]  # fmt: skip
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**1100), 2**1100)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)
senml_records = st.dictionaries(st.sampled_from(LABELS), json_values, max_size=8)
names = st.sampled_from([*KINDS, "s1/occupied", "dev/vehicle_count", "bogus", "a b", ""])


def _assert_named(exc: Exception) -> None:
    assert str(exc).strip(), f"{type(exc).__name__} without a reason"


@FUZZ
@given(st.binary(max_size=512))
def test_decoder_survives_any_bytes(payload: bytes) -> None:
    try:
        decode_pack(payload, now=NOW)
    except PayloadError as exc:
        _assert_named(exc)


@FUZZ
@given(st.lists(senml_records, max_size=6))
def test_decoder_survives_senml_shaped_json(pack: list[dict[str, Any]]) -> None:
    payload = json.dumps(pack).encode()
    try:
        records = decode_pack(payload, now=NOW)
    except PayloadError as exc:
        _assert_named(exc)
        return
    assert all(r.name and r.time >= 0 for r in records)


@FUZZ
@given(st.lists(st.fixed_dictionaries({"n": names}, optional={
    "v": st.floats(-1e6, 1e6), "vb": st.booleans(), "u": st.sampled_from(["V", "km/h", "m/s", "%"]),
    "t": st.floats(-1e5, 1e5), "seq": st.integers(0, 2**40)}), min_size=1, max_size=8),
    st.sampled_from(list(Stream)))  # fmt: skip
def test_interpretation_rejects_records_with_reasons(
    pack: list[dict[str, Any]], stream: Stream
) -> None:
    try:
        result = decode_readings(json.dumps(pack).encode(), "dev", stream, now=NOW)
    except PayloadError as exc:
        _assert_named(exc)
        return
    assert len(result.readings) + len(result.rejections) <= len(pack)
    assert all(r.reason for r in result.rejections)
    assert all(r.stream is stream for r in result.readings)


@st.composite
def readings(draw: st.DrawFn) -> list[Reading]:
    kind = draw(st.sampled_from(sorted(KINDS)))
    spec = KINDS[kind]
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(milliseconds=draw(st.integers(0, 10**10)))
    count = draw(st.integers(1, 20))
    values = (
        st.sampled_from([0.0, 1.0])
        if spec.value_type is ValueType.BOOLEAN
        else st.floats(spec.minimum, spec.maximum)
    )
    return [
        Reading("dev-1", kind, start + timedelta(milliseconds=draw(st.integers(0, 10**7))),
                draw(values), draw(st.none() | st.sampled_from(["a", "lane-2"])), seq=i)
        for i in range(count)
    ]  # fmt: skip


@FUZZ
@given(readings(), st.booleans())
def test_encode_decode_round_trip(batch: list[Reading], cbor: bool) -> None:
    decoded = decode_readings(encode_readings(batch, cbor=cbor), "dev-1", batch[0].stream, now=0)
    assert decoded.rejections == []
    assert [(r.kind, r.sub_id, r.seq, r.observed_at) for r in decoded.readings] == [
        (r.kind, r.sub_id, r.seq, r.observed_at) for r in batch
    ]
    for got, sent in zip(decoded.readings, batch, strict=True):
        assert abs(got.value - sent.value) <= 1e-9 * max(1.0, abs(sent.value))


TOPIC_ALPHABET = string.ascii_letters + string.digits + "/+#$._- \x00é"


@FUZZ
@given(st.text(TOPIC_ALPHABET, max_size=200))
def test_topic_parser_survives_any_text(text: str) -> None:
    topics = Topics()
    try:
        parsed = topics.parse(text)
    except TopicError as exc:
        _assert_named(exc)
        return
    if isinstance(parsed, DeviceTopic):
        assert "+" not in text and "#" not in text
        assert topics.device(parsed.site, parsed.device_id, parsed.channel) == text
    else:
        assert isinstance(parsed, FeedTopic)


ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", fullmatch=True)


@FUZZ
@given(ids, ids, st.sampled_from(list(Channel)))
def test_valid_topics_round_trip(site: str, device: str, channel: Channel) -> None:
    topics = Topics()
    parsed = topics.parse(topics.device(site, device, channel))
    assert parsed == DeviceTopic(site, device, channel) or site == "feeds"


registry_tables = st.dictionaries(
    st.sampled_from(["site", "lot", "spot", "segment", "device", "extra"]),
    st.lists(st.dictionaries(st.sampled_from(
        ["id", "site", "lot", "device", "sensor", "kind", "capacity", "lat", "lon", "name",
         "coordinates", "speed_limit_kmh", "segment", "area", "direction"]), json_values,
        max_size=8), max_size=3) | json_values,
    max_size=5,
)  # fmt: skip


@FUZZ
@given(registry_tables)
def test_registry_loader_survives_any_tables(data: dict[str, Any]) -> None:
    try:
        parse_registry(data)
    except RegistryError as exc:
        _assert_named(exc)


config_sections = st.dictionaries(
    st.sampled_from(["database", "mqtt", "ingest", "feeds", "city", "nope"]),
    st.dictionaries(st.sampled_from(["url", "port", "auto_register", "late_window_s", "x"]),
                    json_values, max_size=4) | json_values,
    max_size=4,
)  # fmt: skip
env_values = st.dictionaries(
    st.sampled_from(["STREETSENSE_FEEDS_PORT", "STREETSENSE_INGEST_AUTO_REGISTER",
                     "STREETSENSE_INGEST_DEVICE_RATE_PER_S", "STREETSENSE_MQTT_URL"]),
    st.text(max_size=12),
    max_size=3,
)  # fmt: skip


@FUZZ
@given(config_sections, env_values)
def test_config_loader_survives_any_file_and_environment(
    data: dict[str, Any], env: dict[str, str]
) -> None:
    try:
        loaded = load_dataclass(Settings, data, env, "STREETSENSE_")
    except ConfigError as exc:
        _assert_named(exc)
        return
    assert isinstance(loaded.feeds.port, int)
    assert isinstance(loaded.ingest.auto_register, bool)
