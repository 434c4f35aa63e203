"""SenML packs (RFC 8428) in JSON and CBOR: decode to resolved records, encode records.

This layer knows SenML only; `streetsense.readings` maps resolved records to our reading kinds.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from streetsense.errors import PayloadError

MAX_RECORDS: Final = 10_000
# RFC 8428 4.5.3: times below 2**28 are relative to "now".
RELATIVE_TIME_LIMIT: Final = 2**28
# Year 9999: anything later cannot be a device's clock.
MAX_ABSOLUTE_TIME: Final = 253_402_300_799.0
SENML_VERSION: Final = 10
# Our extensions. Receivers that do not know them may ignore them (they do not end in "_").
SEQ_FIELD: Final = "seq"
CLOCK_SUSPECT_FIELD: Final = "clock_suspect"
# The sender holds nothing below this sequence number any more (dropped at its buffer cap).
SEQ_FLOOR_FIELD: Final = "seq_floor"
# A record with a higher revision replaces the reading it revises (same name and time): an
# interval count amended with detections that arrived after it was sent (docs/protocol.md).
REVISION_FIELD: Final = "rev"
MAX_REVISION: Final = 2**31 - 1

_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9:./_-]*\Z")
_CBOR_LABELS: Final[Mapping[int, str]] = {
    -1: "bver", -2: "bn", -3: "bt", -4: "bu", -5: "bv", -6: "bs",
    0: "n", 1: "u", 2: "v", 3: "vs", 4: "vb", 5: "s", 6: "t", 7: "ut", 8: "vd",
}  # fmt: skip
_CBOR_KEYS: Final[Mapping[str, int]] = {name: label for label, name in _CBOR_LABELS.items()}
_KNOWN: Final = frozenset(_CBOR_KEYS) | {
    SEQ_FIELD, CLOCK_SUSPECT_FIELD, SEQ_FLOOR_FIELD, REVISION_FIELD,
}  # fmt: skip
_VALUE_FIELDS: Final = ("v", "vs", "vb", "vd")


@dataclass(frozen=True, slots=True)
class Record:
    """One resolved SenML record: base fields applied, time absolute (seconds since the epoch)."""

    name: str
    time: float
    unit: str | None = None
    value: float | None = None
    bool_value: bool | None = None
    string_value: str | None = None
    data_value: bytes | str | None = None
    sum: float | None = None
    update_time: float | None = None
    seq: int | None = None
    seq_floor: int | None = None
    clock_suspect: bool = False
    revision: int = 0


def decode_pack(payload: bytes, *, now: float | None = None) -> list[Record]:
    """Decode a SenML pack sent as JSON or CBOR (told apart by the first byte).

    Args:
        payload: the message body.
        now: the receive time in epoch seconds, for relative times; defaults to the clock.

    Returns:
        The resolved records, in pack order.

    Raises:
        PayloadError: the payload is not a valid SenML pack; the message names field and index.
    """
    raw = _parse(payload)
    if not isinstance(raw, list):
        raise PayloadError("a SenML pack must be an array of records")
    if not raw:
        raise PayloadError("the SenML pack is empty")
    if len(raw) > MAX_RECORDS:
        raise PayloadError(f"the pack has {len(raw)} records; at most {MAX_RECORDS} are accepted")
    return _resolve(raw, time.time() if now is None else now)


def _parse(payload: bytes) -> Any:
    start = payload.lstrip()[:1]
    if not start:
        raise PayloadError("the payload is empty")
    if start in (b"[", b"{"):
        return _parse_json(payload)
    if 0x80 <= start[0] <= 0x9F or start[0] in (0xA0, 0xBF):
        return _parse_cbor(payload)
    raise PayloadError("the payload is neither SenML JSON (starts with '[') nor SenML CBOR")


def _reject_constant(name: str) -> float:
    raise PayloadError(f"{name} is not a number SenML allows")


def _parse_json(payload: bytes) -> Any:
    try:
        return json.loads(payload, parse_constant=_reject_constant)
    except RecursionError as exc:
        raise PayloadError("the JSON is nested too deeply") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"the payload is not valid JSON: {exc}") from exc


def _parse_cbor(payload: bytes) -> Any:
    try:
        import cbor2  # noqa: PLC0415  (optional: edge devices speak JSON only)
    except ImportError as exc:
        raise PayloadError("CBOR payloads need the 'cbor2' package on the receiver") from exc
    try:
        raw = cbor2.loads(payload)
    except RecursionError as exc:
        raise PayloadError("the CBOR is nested too deeply") from exc
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError) as exc:
        raise PayloadError(f"the payload is not valid CBOR: {exc}") from exc
    if isinstance(raw, list):
        return [_cbor_record(item, index) for index, item in enumerate(raw)]
    return raw


def _cbor_record(item: Any, index: int) -> Any:
    if not isinstance(item, dict):
        return item
    record: dict[str, Any] = {}
    for key, value in item.items():
        if isinstance(key, int):
            if key not in _CBOR_LABELS:
                raise PayloadError(f"unknown CBOR label {key}", index=index)
            record[_CBOR_LABELS[key]] = value
        elif isinstance(key, str):
            record[key] = value
        else:
            raise PayloadError("CBOR map keys must be integers or text", index=index)
    return record


def _number(record: Mapping[str, Any], key: str, index: int) -> float | None:
    value = record.get(key)
    if value is None:
        return None
    # bool is an int in Python but never a SenML number.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PayloadError("must be a number", index=index, field=key)
    try:
        number = float(value)
    except OverflowError:
        raise PayloadError("is too large for a number", index=index, field=key) from None
    if not math.isfinite(number):
        raise PayloadError("must be a finite number", index=index, field=key)
    return number


def _text(record: Mapping[str, Any], key: str, index: int) -> str | None:
    value = record.get(key)
    if value is not None and not isinstance(value, str):
        raise PayloadError("must be a string", index=index, field=key)
    return value


@dataclass(slots=True)
class _Base:
    name: str = ""
    time: float = 0.0
    unit: str | None = None
    value: float = 0.0
    sum: float = 0.0

    def update(self, record: Mapping[str, Any], index: int) -> None:
        version = record.get("bver")
        if version is not None:
            if isinstance(version, bool) or not isinstance(version, int) or version < 1:
                raise PayloadError("must be a positive integer", index=index, field="bver")
            if version > SENML_VERSION:
                raise PayloadError(
                    f"SenML version {version} is newer than the supported {SENML_VERSION}",
                    index=index,
                    field="bver",
                )
        if (name := _text(record, "bn", index)) is not None:
            self.name = name
        if (base_time := _number(record, "bt", index)) is not None:
            self.time = base_time
        if (unit := _text(record, "bu", index)) is not None:
            self.unit = unit
        if (base_value := _number(record, "bv", index)) is not None:
            self.value = base_value
        if (base_sum := _number(record, "bs", index)) is not None:
            self.sum = base_sum


def _resolve(raw: list[Any], now: float) -> list[Record]:
    base = _Base()
    records: list[Record] = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise PayloadError("each record must be an object (map)", index=index)
        for key in item:
            if key not in _KNOWN and isinstance(key, str) and key.endswith("_"):
                raise PayloadError("must-understand field is not supported", index=index, field=key)
        base.update(item, index)
        record = _resolve_record(item, index, base, now)
        if record is not None:
            records.append(record)
    if not records:
        raise PayloadError("the pack holds no record with a value")
    return records


def _resolve_record(item: Mapping[str, Any], index: int, base: _Base, now: float) -> Record | None:
    present = [key for key in _VALUE_FIELDS if key in item]
    has_sum = "s" in item
    if not present and not has_sum and "n" not in item:
        return None  # a record that only sets base fields
    if len(present) > 1:
        raise PayloadError(f"a record holds one value, not {present}", index=index)
    name = base.name + (_text(item, "n", index) or "")
    if not _NAME_RE.match(name):
        raise PayloadError(
            f"name {name[:80]!r} is empty or has characters SenML forbids", index=index, field="n"
        )
    value = _number(item, "v", index)
    if value is not None or (not present and not has_sum and "bv" in item):
        value = (value or 0.0) + base.value
    bool_value = item.get("vb")
    if bool_value is not None and not isinstance(bool_value, bool):
        raise PayloadError("must be true or false", index=index, field="vb")
    data_value = item.get("vd")
    if data_value is not None and not isinstance(data_value, bytes | str):
        raise PayloadError("must be base64 text (JSON) or bytes (CBOR)", index=index, field="vd")
    if not present and not has_sum:
        raise PayloadError("the record has no value (v, vs, vb, vd) and no sum (s)", index=index)
    sum_value = _number(item, "s", index)
    return Record(
        name=name,
        time=_absolute_time(base.time + (_number(item, "t", index) or 0.0), now, index),
        unit=_text(item, "u", index) or base.unit,
        value=value,
        bool_value=bool_value,
        string_value=_text(item, "vs", index),
        data_value=data_value,
        sum=None if sum_value is None else sum_value + base.sum,
        update_time=_number(item, "ut", index),
        seq=_sequence(item, index, SEQ_FIELD),
        seq_floor=_sequence(item, index, SEQ_FLOOR_FIELD),
        clock_suspect=item.get(CLOCK_SUSPECT_FIELD) is True,
        revision=_revision(item, index),
    )


def _absolute_time(value: float, now: float, index: int) -> float:
    if abs(value) < RELATIVE_TIME_LIMIT:
        value += now
    if not 0 <= value <= MAX_ABSOLUTE_TIME:
        raise PayloadError(f"time {value!r} is outside years 1970-9999", index=index, field="t")
    return value


def _sequence(item: Mapping[str, Any], index: int, key: str) -> int | None:
    seq = item.get(key)
    if seq is None:
        return None
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < 2**63:
        raise PayloadError("must be an integer from 0 to 2**63-1", index=index, field=key)
    return seq


def _revision(item: Mapping[str, Any], index: int) -> int:
    revision = item.get(REVISION_FIELD, 0)
    if isinstance(revision, bool) or not isinstance(revision, int):
        raise PayloadError("must be an integer", index=index, field=REVISION_FIELD)
    if not 0 <= revision <= MAX_REVISION:
        raise PayloadError(f"must be from 0 to {MAX_REVISION}", index=index, field=REVISION_FIELD)
    return revision


def encode_pack(records: Iterable[Mapping[str, Any]], *, cbor: bool = False) -> bytes:
    """Encode already-shaped SenML records (label -> value maps) as compact JSON or CBOR.

    Args:
        records: records using SenML JSON labels ("bn", "n", "v", "t", ...) plus our extensions.
        cbor: encode as CBOR with RFC 8428 integer labels instead of JSON.

    Returns:
        The payload bytes.
    """
    pack = list(records)
    if not cbor:
        return json.dumps(pack, separators=(",", ":"), allow_nan=False).encode()
    import cbor2  # noqa: PLC0415  (optional dependency)

    return bytes(cbor2.dumps([{_CBOR_KEYS.get(k, k): v for k, v in r.items()} for r in pack]))
