"""A fast path for the common SenML pack, giving exactly what the kernel's decoder gives.

Profiling showed the generic decoder (json, resolved Record objects, then readings) is the
largest cost per message. Packs from our agents use a handful of fields; for those this
module builds the readings directly, with orjson. Anything unusual (other fields, odd types,
any record the kernel would reject) returns None and the caller uses
`streetsense.readings.decode_readings`, so rejections always carry the kernel's reasons.
tests/ingest/test_fastdecode.py checks the equivalence on generated packs.
"""

from __future__ import annotations

import math
from typing import Any, Final

import orjson

from streetsense.kinds import KINDS, Kind, Stream, ValueType
from streetsense.readings import Interpretation, Reading, epoch_to_datetime
from streetsense.senml import MAX_ABSOLUTE_TIME, MAX_RECORDS, RELATIVE_TIME_LIMIT

_FIELDS: Final = frozenset({"bn", "bt", "n", "v", "vb", "u", "t", "seq", "seq_floor",
                            "clock_suspect"})  # fmt: skip
_SEQ_LIMIT: Final = 2**63
_NAME_CACHE_SIZE: Final = 100_000
# (full name, device id, stream) -> (sub id, kind); filled only with names that passed checks
_names: dict[tuple[str, str, Stream], tuple[str | None, Kind]] = {}


class _NotSimpleError(Exception):
    """The pack is not the simple shape: let the kernel decode it."""


def fast_decode(
    payload: bytes, device_id: str, stream: Stream, now: float
) -> Interpretation | None:
    """Decode a simple SenML JSON pack into readings, or return None to use the kernel."""
    if payload[:1] != b"[":
        return None
    try:
        raw = orjson.loads(payload)
        if not raw or len(raw) > MAX_RECORDS:
            return None
        return _interpret(raw, device_id, stream, now)
    except (
        _NotSimpleError,
        orjson.JSONDecodeError,
        ValueError,
        TypeError,
        KeyError,
        OverflowError,
    ):
        return None


def _interpret(raw: list[Any], device_id: str, stream: Stream, now: float) -> Interpretation:
    base_name = ""
    base_time = 0.0
    readings: list[Reading] = []
    floors: list[int] = []
    for item in raw:
        if type(item) is not dict or not _FIELDS.issuperset(item):
            raise _NotSimpleError
        if "bn" in item:
            base_name = _text(item["bn"])
        if "bt" in item:
            base_time = _number(item["bt"])
        if "u" in item and type(item["u"]) is not str:
            raise _NotSimpleError  # the kernel checks the unit's type even where unused
        has_v, has_vb = "v" in item, "vb" in item
        if not has_v and not has_vb:
            if "n" in item:
                raise _NotSimpleError  # a named record without a value: the kernel explains it
            continue  # a record that only sets base fields
        if has_v and has_vb:
            raise _NotSimpleError
        name = base_name + (_text(item["n"]) if "n" in item else "")
        sub_id, spec = _name(name, device_id, stream)
        time_value = base_time + ((_number(item["t"]) if "t" in item else 0.0) or 0.0)
        if abs(time_value) < RELATIVE_TIME_LIMIT:
            time_value += now
        if not 0 <= time_value <= MAX_ABSOLUTE_TIME:
            raise _NotSimpleError
        seq = _sequence(item.get("seq"))
        floor = _sequence(item.get("seq_floor"))
        if floor is not None:
            floors.append(floor)
        readings.append(
            Reading(
                device_id=device_id,
                kind=spec.name,
                observed_at=epoch_to_datetime(time_value),
                value=_value(item, spec, has_v),
                sub_id=sub_id,
                seq=seq,
                clock_suspect=item.get("clock_suspect") is True,
            )
        )
    if not readings:
        raise _NotSimpleError
    return Interpretation(readings=readings, seq_floor=max(floors) if floors else None)


def _value(item: dict[str, Any], spec: Kind, has_v: bool) -> float:
    if spec.value_type is ValueType.BOOLEAN:
        flag = item.get("vb")
        if has_v or type(flag) is not bool:
            raise _NotSimpleError
        return 1.0 if flag else 0.0
    if not has_v:
        raise _NotSimpleError
    value = _number(item["v"])
    value = (value or 0.0) + 0.0  # as the kernel adds the (absent) base value
    return spec.to_canonical(value, item.get("u") or None)


def _name(name: str, device_id: str, stream: Stream) -> tuple[str | None, Kind]:
    key = (name, device_id, stream)
    found = _names.get(key)
    if found is not None:
        return found
    from streetsense.senml import _NAME_RE  # noqa: PLC0415  (the kernel's own name rule)

    if not _NAME_RE.match(name):
        raise _NotSimpleError
    for separator in ("/", ":"):
        own = device_id + separator
        if name.startswith(own):
            name = name[len(own) :]
            break
    sub_id, _, kind_name = name.rpartition("/")
    spec = KINDS.get(kind_name)
    if "/" in sub_id or spec is None or spec.stream is not stream:
        raise _NotSimpleError
    if len(_names) >= _NAME_CACHE_SIZE:
        _names.clear()
    found = _names[key] = (sub_id or None, spec)
    return found


def _text(value: Any) -> str:
    if type(value) is not str:
        raise _NotSimpleError
    return value


def _number(value: Any) -> float:
    if type(value) is not int and type(value) is not float:
        raise _NotSimpleError
    number = float(value)
    if not math.isfinite(number):
        raise _NotSimpleError
    return number


def _sequence(value: Any) -> int | None:
    if value is None:
        return None
    if type(value) is not int or not 0 <= value < _SEQ_LIMIT:
        raise _NotSimpleError
    return value
