"""Load mode: every message reaches a real subscriber as valid SenML with sequence numbers."""

from __future__ import annotations

from simulators.load import LoadSpec, device_id, registry_tables, run_load
from simulators.mqtt import PacedPublisher
from streetsense.config import Settings
from streetsense.kinds import Stream
from streetsense.readings import decode_readings
from streetsense.registry import parse_registry
from streetsense.topics import DeviceTopic, Topics
from tests.simulators.conftest import Collector


def test_load_publishes_every_message_as_decodable_senml(
    mqtt_settings: Settings, topics: Topics, collector: Collector
) -> None:
    spec = LoadSpec(sensors=500, rate=2_000.0, messages=1_200)
    with PacedPublisher(mqtt_settings, window=200) as publisher:
        result = run_load(spec, topics, publisher)
    assert result.messages == 1_200 and result.rate > 0
    received = collector.wait_for(1_200)
    assert len(received) == 1_200
    seqs: dict[str, list[int]] = {}
    for topic, payload in received:
        parsed = topics.parse(topic)
        assert isinstance(parsed, DeviceTopic)
        interpretation = decode_readings(payload, parsed.device_id, Stream.PARKING)
        assert interpretation.rejections == []
        for reading in interpretation.readings:
            assert reading.seq is not None
            seqs.setdefault(parsed.device_id, []).append(reading.seq)
    assert len(seqs) == 500
    assert all(sorted(v) == list(range(1, len(v) + 1)) for v in seqs.values())


def test_gateway_packs_carry_many_spots(
    mqtt_settings: Settings, topics: Topics, collector: Collector
) -> None:
    spec = LoadSpec(sensors=1_000, rate=1_000.0, messages=30, sensors_per_gateway=50)
    with PacedPublisher(mqtt_settings) as publisher:
        result = run_load(spec, topics, publisher)
    assert result.readings == 1_500
    received = collector.wait_for(30)
    readings = 0
    for topic, payload in received:
        parsed = topics.parse(topic)
        assert isinstance(parsed, DeviceTopic)
        decoded = decode_readings(payload, parsed.device_id, Stream.PARKING)
        assert {r.sub_id for r in decoded.readings} >= {"s000", "s049"}
        readings += len(decoded.readings)
    assert readings == 1_500


def test_load_registry_names_every_device_and_spot() -> None:
    spec = LoadSpec(sensors=250, sensors_per_gateway=5)
    registry = parse_registry(registry_tables(spec, (56.0, 10.0)))
    assert len(registry.devices) == 50 and len(registry.spots) == 250
    assert {s.sensor for s in registry.spots if s.device == device_id(49)} == {
        f"s{n:03d}" for n in range(5)
    }
    single = parse_registry(registry_tables(LoadSpec(sensors=120), (56.0, 10.0)))
    assert len(single.lots) == 2 and all(s.sensor is None for s in single.spots)
