"""Ingest partitions (ingest.partition = "k/N"): processes without $share, no overlap, no gap."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from harness.ingest import SITE, exactly_once, ingest_thread, register, stream, wait_until
from ingest.doctor import FAIL, OK, WARN
from ingest.doctor_partitions import layout_check
from streetsense.config import Settings, load_settings, with_overrides
from streetsense.demo.broker import EmbeddedBroker
from streetsense.errors import ConfigError
from streetsense.partition import Partition, parse_partition
from streetsense.topics import Channel, Topics
from tests.deploy.test_doctor import doctor

PREFIX = "streetsense/v1"


def _topics(count: int) -> list[bytes]:
    topics = Topics(PREFIX)
    return [
        topics.device(f"site{n % 40}", f"dev-{n}", Channel.PARKING).encode() for n in range(count)
    ]


@pytest.mark.parametrize("parts", [1, 2, 3, 5])
@pytest.mark.parametrize("by", ["device", "site"])
def test_every_topic_belongs_to_exactly_one_part(parts: int, by: str) -> None:
    processes = [parse_partition(f"{k}/{parts}", by, PREFIX) for k in range(1, parts + 1)]
    owners = [[p.part for p in processes if p.owns(topic)] for topic in _topics(2_000)]
    assert all(len(found) == 1 for found in owners)
    # and every part gets some: a hash that sent everything to one part would pass the above
    assert {found[0] for found in owners} == set(range(1, parts + 1))


def test_by_site_keeps_a_sites_devices_together_and_by_device_spreads_them() -> None:
    topics = Topics(PREFIX)
    site_devices = [topics.device("north", f"dev-{n}", Channel.PARKING).encode() for n in range(50)]
    by_site = Partition(1, 4, "site", PREFIX)
    by_device = Partition(1, 4, "device", PREFIX)
    assert len({by_site.part_of(t) for t in site_devices}) == 1
    assert len({by_device.part_of(t) for t in site_devices}) == 4
    # a device's channels stay with one process (its sequence state lives there)
    channels = [topics.device("north", "dev-1", c).encode() for c in Channel]
    assert len({by_device.part_of(t) for t in channels}) == 1


def test_a_malformed_topic_still_has_exactly_one_owner() -> None:
    processes = [Partition(k, 3, "device", PREFIX) for k in (1, 2, 3)]
    for topic in (b"streetsense/v1", b"streetsense/v1/only-site", b"other", b""):
        assert sum(p.owns(topic) for p in processes) == 1


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("2", "must be k/N"),
        ("two/three", "must be k/N"),
        ("1/3/3", "must be k/N"),
        ("0/3", "the part must be 1 to N"),
        ("4/3", "the part must be 1 to N"),
        ("1/0", "the part must be 1 to N"),
        ("1/257", "N at most 256"),
        ("-1/3", "must be k/N"),
    ],
)
def test_a_bad_partition_is_refused_naming_the_setting_and_the_form(value: str, said: str) -> None:
    with pytest.raises(ConfigError, match="STREETSENSE_INGEST_PARTITION") as error:
        load_settings(None, environ={"STREETSENSE_INGEST_PARTITION": value,
                                     "STREETSENSE_MQTT_SHARED_GROUP": ""})  # fmt: skip
    assert said in str(error.value)


def test_a_bad_partition_key_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"partition_by.*'lot' must be device or site"):
        load_settings(None, environ={"STREETSENSE_INGEST_PARTITION_BY": "lot"})


def test_partitions_and_a_shared_group_together_are_refused() -> None:
    environ = {"STREETSENSE_INGEST_PARTITION": "1/2"}  # shared_group defaults to "ingest"
    with pytest.raises(ConfigError, match=r"shared_group = 'ingest'.*one or the other"):
        load_settings(None, environ=environ)
    # on MQTT 3.1.1 there is no group to conflict with
    settings = load_settings(None, environ={**environ, "STREETSENSE_MQTT_PROTOCOL": "3.1.1"})
    assert settings.partition().label == "1/2 by device"
    assert load_settings(None, environ={}).partition().whole


def _device_part(topics: Topics, device: str, parts: int) -> int:
    topic = topics.device(SITE, device, Channel.PARKING).encode()
    return Partition(1, parts, "device", topics.prefix).part_of(topic)


@pytest.fixture(params=["mosquitto-5", "amqtt-3.1.1"])
def plain_broker(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Settings]:
    """Return settings on a broker without a shared group: the test broker, or amqtt (3.1.1)."""
    plain = with_overrides(settings, mqtt={"shared_group": ""})
    if request.param == "mosquitto-5":
        yield plain
        return
    with EmbeddedBroker() as embedded:
        yield with_overrides(plain, mqtt={"url": embedded.url, "protocol": "3.1.1"})


@pytest.mark.faults
def test_three_processes_each_write_exactly_their_part_through_one_broker(
    plain_broker: Settings, topics: Topics
) -> None:
    devices = [f"lot-sensor-{n}" for n in range(24)]
    per_device = 100
    plain = plain_broker
    register(plain.database.url, devices)
    expected = {
        k: per_device * sum(_device_part(topics, d, 3) == k for d in devices) for k in (1, 2, 3)
    }
    with ExitStack() as running:
        services = [
            running.enter_context(
                ingest_thread(with_overrides(plain, ingest={"partition": f"{k}/3"}))
            )
            for k in (1, 2, 3)
        ]
        v5 = plain.mqtt.protocol == "5"
        sent = stream(plain.mqtt.url, topics, devices, per_device, pack=10, v5=v5)
        assert wait_until(lambda: sum(s.totals.written for s in services) >= sent, 60)
        # each process wrote exactly its devices' readings: nothing twice, nothing missing
        assert {k: s.totals.written for k, s in zip((1, 2, 3), services, strict=True)} == expected
        assert all(s.metrics.duplicates._value.get() == 0 for s in services)
        # and acknowledged the rest, the others' parts, without decoding it
        assert all(s.link.other_part >= sent // 10 - expected[k] // 10
                   for k, s in zip((1, 2, 3), services, strict=True))  # fmt: skip
        assert [s.link.client_id[-5:] for s in services] == ["p1of3", "p2of3", "p3of3"]
    assert exactly_once(plain.database.url) == (sent, sent)


@pytest.mark.faults
def test_the_doctor_names_a_part_no_process_runs(settings: Settings, tmp_path: Path) -> None:
    plain = with_overrides(settings, mqtt={"shared_group": ""})
    with ExitStack() as running:
        for k in (1, 3):
            running.enter_context(
                ingest_thread(with_overrides(plain, ingest={"partition": f"{k}/3"}))
            )
        result = doctor(tmp_path, database_url=settings.database.url, mqtt_url=settings.mqtt.url,
                        mqtt_shared_group="", ingest_partition="1/3")  # fmt: skip
    assert result.returncode == 1, result.stdout
    assert "[FAIL] ingest partitions: no ingest process connected for part 2/3" in result.stdout
    assert "STREETSENSE_INGEST_PARTITION=2/3 streetsense ingest" in result.stdout


def _layout(*parts: tuple[int, int, str], whole: int = 0) -> tuple[str, str]:
    found = layout_check(Counter(parts), whole)
    return found.status, found.detail


def test_the_doctor_judges_gaps_overlaps_and_mixed_layouts() -> None:
    assert _layout((1, 2, "device"), (2, 2, "device")) == (
        OK, "parts 1-2 of 2 by device, one process each")  # fmt: skip
    status, detail = _layout((1, 2, "device"), (2, 3, "device"), (3, 3, "device"))
    assert status == FAIL and "different ways (N=2 by device, N=3 by device)" in detail
    status, detail = _layout((1, 2, "device"), (2, 2, "site"))
    assert status == FAIL and "N=2 by site" in detail
    status, detail = _layout((1, 2, "site"), (1, 2, "site"), (2, 2, "site"))
    assert status == WARN and "part 1/2 runs twice" in detail
    status, detail = _layout((1, 2, "device"), (2, 2, "device"), whole=1)
    assert status == WARN and "1 ingest without ingest.partition takes every topic" in detail
