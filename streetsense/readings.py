"""Our typed readings: interpretation of resolved SenML records, and encoding back to packs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from streetsense.errors import PayloadError
from streetsense.ids import describe_bad_id, is_valid_id
from streetsense.kinds import KINDS, Kind, Stream, ValueType
from streetsense.senml import (
    CLOCK_SUSPECT_FIELD,
    MAX_REVISION,
    REVISION_FIELD,
    SEQ_FIELD,
    SEQ_FLOOR_FIELD,
    Record,
    decode_pack,
    encode_pack,
)

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_to_datetime(seconds: float) -> datetime:
    """Return the UTC datetime for epoch seconds, rounded to the microsecond.

    Rounding makes the same instant sent as `bt + t` or as an absolute `t` compare equal,
    which deduplication relies on.
    """
    return EPOCH + timedelta(microseconds=round(seconds * 1_000_000))


def datetime_to_epoch(moment: datetime) -> float:
    """Return epoch seconds for an aware datetime."""
    return (moment - EPOCH) / timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class Reading:
    """One observation of one kind from one device (or one of its spots or lanes)."""

    device_id: str
    kind: str
    observed_at: datetime
    value: float
    sub_id: str | None = None
    seq: int | None = None
    clock_suspect: bool = False
    # 0 for a first report; a higher revision replaces the stored reading of the same key.
    revision: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.revision <= MAX_REVISION:
            raise ValueError(f"revision {self.revision} is outside 0..{MAX_REVISION}")
        if not is_valid_id(self.device_id):
            raise ValueError(describe_bad_id("device id", self.device_id))
        if self.sub_id is not None and not is_valid_id(self.sub_id):
            raise ValueError(describe_bad_id("sub-device id", self.sub_id))
        spec = KINDS.get(self.kind)
        if spec is None:
            raise ValueError(f"'{self.kind}' is not a reading kind; known: {sorted(KINDS)}")
        if self.observed_at.tzinfo is None:
            raise ValueError("observed_at must be timezone-aware (UTC)")
        if not spec.minimum <= self.value <= spec.maximum:
            raise ValueError(
                f"{self.kind} = {self.value} is outside its physical range "
                f"[{spec.minimum:g}, {spec.maximum:g}] {spec.unit or ''}".rstrip()
            )

    @property
    def stream(self) -> Stream:
        """The stream this reading's kind belongs to."""
        return KINDS[self.kind].stream

    @property
    def name(self) -> str:
        """The SenML name: `<sub_id>/<kind>` for gateways, `<kind>` otherwise."""
        return self.kind if self.sub_id is None else f"{self.sub_id}/{self.kind}"


@dataclass(frozen=True, slots=True)
class RecordRejection:
    """One record of a pack that could not become a reading, and why."""

    index: int
    reason: str
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class Interpretation:
    """What a pack yielded: readings, and the records rejected with their reasons."""

    readings: list[Reading] = field(default_factory=list)
    rejections: list[RecordRejection] = field(default_factory=list)
    # The sender holds no reading below this sequence number any more (see docs/protocol.md).
    seq_floor: int | None = None


def interpret(records: Sequence[Record], device_id: str, stream: Stream) -> Interpretation:
    """Map resolved SenML records from one device's topic to readings.

    A record may name the device itself as a prefix (`<device>/...` or `<device>:...`, as
    `bn` often does); any other prefix is a spot or lane id. Records that fail are returned
    as rejections, so the rest of the pack is kept.

    Args:
        records: resolved records of one pack.
        device_id: the device id taken from the topic.
        stream: the stream taken from the topic.

    Returns:
        The readings and the rejections, each rejection with its index in the pack.
    """
    floors = [r.seq_floor for r in records if r.seq_floor is not None]
    result = Interpretation(seq_floor=max(floors) if floors else None)
    for index, record in enumerate(records):
        try:
            result.readings.append(_reading(record, device_id, stream))
        except (PayloadError, ValueError) as exc:
            result.rejections.append(RecordRejection(index, str(exc), record.seq))
    return result


def decode_readings(
    payload: bytes, device_id: str, stream: Stream, *, now: float | None = None
) -> Interpretation:
    """Decode a payload from a device topic into readings and per-record rejections.

    Raises:
        PayloadError: the payload is not a SenML pack at all (then nothing of it is usable).
    """
    return interpret(decode_pack(payload, now=now), device_id, stream)


def _split_name(name: str, device_id: str) -> tuple[str | None, str]:
    for separator in ("/", ":"):
        own = device_id + separator
        if name.startswith(own):
            name = name[len(own) :]
            break
    sub_id, _, kind = name.rpartition("/")
    if "/" in sub_id:
        raise ValueError(f"name '{name}' has more than one '/'; use '<spot or lane>/<kind>'")
    return (sub_id or None), kind


def _reading(record: Record, device_id: str, stream: Stream) -> Reading:
    sub_id, kind_name = _split_name(record.name, device_id)
    spec = KINDS.get(kind_name)
    if spec is None:
        raise ValueError(f"'{kind_name}' is not a streetsense reading name; known: {sorted(KINDS)}")
    if spec.stream is not stream:
        raise ValueError(f"'{kind_name}' belongs on the '{spec.stream}' stream, not '{stream}'")
    return Reading(
        device_id=device_id,
        kind=kind_name,
        observed_at=epoch_to_datetime(record.time),
        value=_value(record, spec),
        sub_id=sub_id,
        seq=record.seq,
        clock_suspect=record.clock_suspect,
        revision=record.revision,
    )


def _value(record: Record, spec: Kind) -> float:
    if spec.value_type is ValueType.BOOLEAN:
        if record.bool_value is None:
            raise ValueError(f"'{spec.name}' needs a boolean value in 'vb'")
        return 1.0 if record.bool_value else 0.0
    if record.value is None:
        raise ValueError(f"'{spec.name}' needs a numeric value in 'v'")
    return spec.to_canonical(record.value, record.unit)


def encode_readings(
    readings: Iterable[Reading], *, cbor: bool = False, seq_floor: int | None = None
) -> bytes:
    """Encode readings of one device as one SenML pack, times relative to the first (`bt`).

    Args:
        readings: readings of one device, in the order to send them.
        cbor: encode as CBOR instead of JSON.
        seq_floor: tell the receiver the sender holds nothing below this sequence number.

    Returns:
        The payload bytes; units are the canonical ones, sequence numbers are kept.
    """
    records: list[dict[str, Any]] = []
    base_time = 0.0
    for reading in readings:
        moment = datetime_to_epoch(reading.observed_at)
        record: dict[str, Any] = {"n": reading.name}
        if not records:
            base_time = moment
            record["bt"] = moment
            if seq_floor is not None:
                record[SEQ_FLOOR_FIELD] = seq_floor
        else:
            record["t"] = round(moment - base_time, 6)
        spec = KINDS[reading.kind]
        if spec.value_type is ValueType.BOOLEAN:
            record["vb"] = reading.value >= 0.5
        else:
            record["v"] = reading.value
            if spec.unit:
                record["u"] = spec.unit
        if reading.seq is not None:
            record[SEQ_FIELD] = reading.seq
        if reading.clock_suspect:
            record[CLOCK_SUSPECT_FIELD] = True
        if reading.revision:
            record[REVISION_FIELD] = reading.revision
        records.append(record)
    if not records:
        raise ValueError("a SenML pack needs at least one reading")
    return encode_pack(records, cbor=cbor)
