"""Coverage-guided fuzzing (atheris) of the parsers that read outside input.

Usage: .venv/bin/python bench/fuzz_atheris.py TARGET [-runs=N | -max_total_time=S]
TARGET is one of: senml, readings, topic, registry, config. A crash is any exception other
than the parser's own error type; atheris then stops and writes the crashing input to disk.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from streetsense.config import Settings, load_dataclass
    from streetsense.errors import ConfigError, PayloadError, RegistryError, TopicError
    from streetsense.kinds import Stream
    from streetsense.readings import decode_readings
    from streetsense.registry import parse_registry
    from streetsense.senml import decode_pack
    from streetsense.topics import Topics

NOW = 1_763_884_800.0
TOPICS = Topics()


def _senml(data: bytes) -> None:
    with contextlib.suppress(PayloadError):
        decode_pack(data, now=NOW)


def _readings(data: bytes) -> None:
    with contextlib.suppress(PayloadError):
        decode_readings(data, "dev-1", Stream.PARKING, now=NOW)


def _topic(data: bytes) -> None:
    with contextlib.suppress(TopicError):
        TOPICS.parse(data.decode("utf-8", "replace"))


def _toml(data: bytes) -> dict[str, object] | None:
    try:
        return tomllib.loads(data.decode("utf-8", "replace"))
    except tomllib.TOMLDecodeError:
        return None


def _registry(data: bytes) -> None:
    parsed = _toml(data)
    if parsed is not None:
        with contextlib.suppress(RegistryError):
            parse_registry(parsed)


def _config(data: bytes) -> None:
    parsed = _toml(data)
    if parsed is not None:
        with contextlib.suppress(ConfigError):
            load_dataclass(Settings, parsed, {}, "STREETSENSE_")


TARGETS: dict[str, Callable[[bytes], None]] = {
    "senml": _senml,
    "readings": _readings,
    "topic": _topic,
    "registry": _registry,
    "config": _config,
}

REPO = Path(__file__).resolve().parents[1]
SEEDS: dict[str, list[bytes]] = {
    "senml": [
        b'[{"bn":"urn:dev:ow:10e2073a01080063:","bt":1.276020076001e+09,"bu":"A","bver":5,'
        b'"n":"voltage","u":"V","v":120.1},{"n":"current","t":-5,"v":1.2}]',
        b'[{"n":"open","vb":false},{"n":"label","vs":"x"},{"n":"d","vd":"aGk"}]',
    ],
    "readings": [
        b'[{"bn":"dev-1/","bt":1763884800,"n":"A1/occupied","vb":true,"seq":7,"seq_floor":3},'
        b'{"n":"occupied_spaces","u":"count","v":12,"t":1.5,"seq":8}]',
    ],
    "topic": [b"streetsense/v1/centre/gw-1/parking", b"streetsense/v1/feeds/parking/lot-1"],
    "registry": [(REPO / "deploy" / "registry.example.toml").read_bytes()],
    "config": [b'[ingest]\nbatch_max_age_ms = 5\n[mqtt]\nurl = "mqtt://h"\n[feeds]\nport = 80\n'],
}


def _seed_corpus(name: str) -> str:
    corpus = Path(tempfile.mkdtemp(prefix=f"fuzz-{name}-"))
    for index, seed in enumerate(SEEDS[name]):
        (corpus / f"seed{index}").write_bytes(seed)
    return str(corpus)


if __name__ == "__main__":
    name = sys.argv[1]
    extra = sys.argv[2:]
    if not any(not arg.startswith("-") for arg in extra):
        extra.append(_seed_corpus(name))
    atheris.Setup([sys.argv[0], *extra], TARGETS[name])
    atheris.Fuzz()
