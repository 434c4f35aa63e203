"""Topic grammar: `<prefix>/<site>/<device_id>/<channel>`, prefix `streetsense/v1` by default."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from streetsense.errors import TopicError
from streetsense.ids import describe_bad_id, is_valid_id
from streetsense.kinds import Stream

DEFAULT_PREFIX: Final = "streetsense/v1"
FEEDS_SITE: Final = "feeds"  # reserved: `<prefix>/feeds/...` carries our open feeds
MAX_TOPIC_LENGTH: Final = 512


class Channel(StrEnum):
    """The last topic segment: a data stream, or a control channel."""

    PARKING = "parking"
    TRAFFIC = "traffic"
    LIGHT = "light"
    STATUS = "status"
    ACK = "ack"  # ingest -> device: highest sequence committed without a gap
    CONFIG = "config"  # operator -> device: retained remote configuration
    CONFIG_REPLY = "config-reply"  # device -> operator: configuration applied or refused

    @property
    def stream(self) -> Stream | None:
        """The data stream this channel carries, or None for control channels."""
        try:
            return Stream(self.value)
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class DeviceTopic:
    """A parsed device topic."""

    site: str
    device_id: str
    channel: Channel


@dataclass(frozen=True, slots=True)
class FeedTopic:
    """A topic under the reserved feeds site (published by us, never ingested)."""

    path: str


@dataclass(frozen=True, slots=True)
class Topics:
    """Builds and parses topics under one prefix (tests use a prefix of their own)."""

    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        parts = self.prefix.split("/")
        if not self.prefix or any(not p or p in ("+", "#") or "\0" in p for p in parts):
            raise TopicError(f"topic prefix {self.prefix!r} must be non-empty levels, no wildcards")

    def device(self, site: str, device_id: str, channel: Channel) -> str:
        """Return the topic of one device's channel."""
        for what, value in (("site", site), ("device id", device_id)):
            if not is_valid_id(value):
                raise TopicError(describe_bad_id(what, value))
        return f"{self.prefix}/{site}/{device_id}/{channel.value}"

    def feed_parking(self, lot_id: str) -> str:
        """Return the retained open-feed topic of one lot."""
        if not is_valid_id(lot_id):
            raise TopicError(describe_bad_id("lot id", lot_id))
        return f"{self.prefix}/{FEEDS_SITE}/parking/{lot_id}"

    def subscription(self, shared_group: str | None = None) -> str:
        """Return the filter that matches every topic under the prefix, optionally shared."""
        topic_filter = f"{self.prefix}/#"
        return f"$share/{shared_group}/{topic_filter}" if shared_group else topic_filter

    def parse(self, topic: str) -> DeviceTopic | FeedTopic:
        """Parse a topic under the prefix.

        Raises:
            TopicError: the topic is outside the prefix or breaks the grammar; says which part.
        """
        if len(topic) > MAX_TOPIC_LENGTH:
            raise TopicError(f"topic is {len(topic)} characters long; at most {MAX_TOPIC_LENGTH}")
        head = self.prefix + "/"
        if not topic.startswith(head):
            raise TopicError(f"topic {topic[:80]!r} is not under {head!r}")
        rest = topic[len(head) :]
        if rest.startswith(FEEDS_SITE + "/"):
            return FeedTopic(rest[len(FEEDS_SITE) + 1 :])
        parts = rest.split("/")
        if len(parts) != 3:
            raise TopicError(
                f"topic {topic[:80]!r} must be {head}<site>/<device_id>/<stream>; "
                f"it has {len(parts)} levels after the prefix, not 3"
            )
        site, device_id, channel_name = parts
        for what, value in (("site", site), ("device id", device_id)):
            if not is_valid_id(value):
                raise TopicError(describe_bad_id(what, value))
        try:
            channel = Channel(channel_name)
        except ValueError:
            known = ", ".join(c.value for c in Channel)
            raise TopicError(
                f"'{channel_name[:40]}' is not a stream or channel; use one of: {known}"
            ) from None
        return DeviceTopic(site, device_id, channel)
