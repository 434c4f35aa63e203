"""Ingest partitions: several ingest processes split the topic space without `$share`.

Brokers without shared subscriptions (NATS, amqtt, any MQTT 3.1.1 broker) hand every
message to every subscriber. Each ingest process then subscribes to the whole prefix on a
session of its own and keeps only its part, `ingest.partition = "k/N"`: the topics whose
device id (or site, `ingest.partition_by = "site"`) hashes to k among N. The hash is CRC-32,
the same in every process, Python and release, so the parts of N processes never overlap and
leave no gap. The rest it acknowledges at once: its own session is the only copy it drops.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import Final

from streetsense.errors import ConfigError

PARTITION_BY: Final = ("device", "site")
_PARTITION: Final = re.compile(r"\s*(\d{1,4})\s*/\s*(\d{1,4})\s*")
MAX_PARTS: Final = 256


@dataclass(frozen=True, slots=True)
class Partition:
    """Part `part` of `parts` (1-based) of the topics under `prefix`, keyed by device or site."""

    part: int = 1
    parts: int = 1
    by: str = "device"
    prefix: str = ""

    @property
    def whole(self) -> bool:
        """Whether this is the whole topic space (one ingest, or a shared subscription)."""
        return self.parts == 1

    @property
    def label(self) -> str:
        """`2/3 by device`, as logs, client ids and the doctor show it."""
        return f"{self.part}/{self.parts} by {self.by}"

    @property
    def client_suffix(self) -> str:
        """Appended to the MQTT client id: each part must keep a session of its own."""
        return "" if self.whole else f"-p{self.part}of{self.parts}"

    def key(self, topic: bytes) -> bytes:
        """Return the topic level the part is chosen by (the whole topic when it has none)."""
        levels = topic.split(b"/")
        depth = self.prefix.count("/") + 1 + (1 if self.by == "device" else 0)
        return levels[depth] if len(levels) > depth else topic

    def part_of(self, topic: bytes) -> int:
        """Return the part (1-based) that owns a topic."""
        return zlib.crc32(self.key(topic)) % self.parts + 1

    def owns(self, topic: bytes) -> bool:
        """Tell whether this process ingests the topic."""
        return self.whole or self.part_of(topic) == self.part


def parse_partition(text: str, by: str, prefix: str, where: str = "ingest.partition") -> Partition:
    """Parse `k/N` (empty: the whole topic space) and the key it splits by.

    Raises:
        ConfigError: not k/N with 1 <= k <= N <= 256, or an unknown key; names the fix.
    """
    if by not in PARTITION_BY:
        raise ConfigError(
            f"ingest.partition_by (STREETSENSE_INGEST_PARTITION_BY) = {by!r} must be device or "
            "site (the topic level the parts are hashed on)"
        )
    if not text.strip():
        return Partition(by=by, prefix=prefix)
    match = _PARTITION.fullmatch(text)
    if match is None:
        raise ConfigError(
            f"{where} = {text!r} must be k/N, this process's part k of N ingest processes "
            '(e.g. "2/3"); empty for a single ingest'
        )
    part, parts = int(match[1]), int(match[2])
    if not 1 <= part <= parts <= MAX_PARTS:
        raise ConfigError(
            f"{where} = {text!r}: the part must be 1 to N and N at most {MAX_PARTS} "
            f'(e.g. "1/{max(parts, 2)}" ... "{max(parts, 2)}/{max(parts, 2)}"); run one '
            "process for each part"
        )
    return Partition(part, parts, by, prefix)
