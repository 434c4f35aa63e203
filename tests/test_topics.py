"""Topic grammar: building, parsing and refusing injected topics."""

from __future__ import annotations

import pytest

from streetsense.errors import TopicError
from streetsense.topics import Channel, DeviceTopic, FeedTopic, Topics

T = Topics()


def test_device_topics_round_trip() -> None:
    topic = T.device("aarhus", "gw-12", Channel.PARKING)
    assert topic == "streetsense/v1/aarhus/gw-12/parking"
    assert T.parse(topic) == DeviceTopic("aarhus", "gw-12", Channel.PARKING)
    assert T.parse(topic).channel.stream is not None  # type: ignore[union-attr]
    assert Channel.ACK.stream is None


def test_feed_topics_are_recognised() -> None:
    assert T.parse(T.feed_parking("lot-1")) == FeedTopic("parking/lot-1")


def test_subscription_can_be_shared() -> None:
    assert T.subscription("ingest") == "$share/ingest/streetsense/v1/#"
    assert T.subscription() == "streetsense/v1/#"


@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        ("other/v1/a/b/parking", "is not under"),
        ("streetsense/v1/a/b", "not 3"),
        ("streetsense/v1/a/b/c/parking", "not 3"),
        ("streetsense/v1/a/+/parking", "device id '\\+'"),
        ("streetsense/v1/a/#/parking", "device id '#'"),
        ("streetsense/v1/../b/parking", "site '..'"),
        ("streetsense/v1/a/" + "x" * 65 + "/parking", "not a valid id"),
        ("streetsense/v1/a/b/weather", "not a stream or channel"),
        ("streetsense/v1/" + "a/" * 300, "characters long"),
    ],
)
def test_bad_topics_say_what_is_wrong(topic: str, reason: str) -> None:
    with pytest.raises(TopicError, match=reason):
        T.parse(topic)


def test_building_refuses_injection() -> None:
    with pytest.raises(TopicError):
        T.device("a", "dev/../x", Channel.STATUS)
    with pytest.raises(TopicError):
        Topics(prefix="streetsense/#")
