"""A fast path for the common SenML pack: COPY rows straight from the JSON, as the kernel would.

Profiling showed the generic decoder (json, resolved Record objects, Reading objects, row
tuples with datetimes, psycopg's row encoding) costs several times the database's share of
a reading. Packs from our agents use a handful of fields; for those this module encodes each
reading as its COPY row directly (store.reading_rows), with orjson. Anything unusual (other
fields, odd types, a status pack, any record the kernel would reject or that falls outside the
accepted time window) returns None and the caller uses `streetsense.readings.decode_readings`,
so rejections always carry the kernel's reasons. tests/ingest/test_fastdecode.py checks on
generated packs that an answer from here is byte for byte the rows of the kernel's readings.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

import orjson

from store.reading_rows import PACK_WITH_SEQ, PACK_WITHOUT_SEQ, POSTGRES_EPOCH_US, series_prefix
from streetsense.ids import is_valid_id
from streetsense.kinds import KINDS, Kind, Stream, ValueType
from streetsense.senml import MAX_ABSOLUTE_TIME, MAX_RECORDS, RELATIVE_TIME_LIMIT

_FIELDS: Final = frozenset({"bn", "bt", "n", "v", "vb", "u", "t", "seq", "seq_floor",
                            "clock_suspect"})  # fmt: skip
_SEQ_LIMIT: Final = 2**63
_DEVICE_CACHE_SIZE: Final = 100_000
_NAMES_PER_DEVICE: Final = 1_000
# A series as the hot loop needs it: the COPY prefix of its rows, its kind, whether boolean,
# and the largest value accepted (the kind's physical range, or less: a lot's capacity).
_Series: TypeAlias = tuple[bytes, Kind, bool, float]
SpotCheck: TypeAlias = Callable[[str, str], bool]
# device -> the most occupied_spaces it may report (its lot's capacity and margin)
CountLimit: TypeAlias = Callable[[str], float]
# (device id, stream) -> full name -> series; only names that passed every check the kernel
# makes of a name, sub-id and device id.
_names: dict[tuple[str, Stream], dict[str, _Series]] = {}


@dataclass(slots=True)
class FastRows:
    """What a simple pack yields: its readings as COPY rows, and their sequence numbers."""

    encoded: bytearray
    count: int
    seqs: list[int]
    seq_floor: int | None
    earliest_us: int  # observed times, microseconds since the Unix epoch
    newest_us: int


class _NotSimpleError(Exception):
    """The pack is not the simple shape: let the kernel decode it."""


def fast_rows(
    payload: bytes,
    device_id: str,
    stream: Stream,
    received: float,
    window_us: tuple[int, int, int],
    spot_allowed: SpotCheck | None = None,
    count_limit: CountLimit | None = None,
) -> FastRows | None:
    """Encode a simple SenML JSON pack as COPY rows, or return None to use the kernel.

    Args:
        payload: the message payload.
        device_id: the device of the topic (already validated).
        stream: the topic's stream.
        received: epoch seconds of receipt ("now" for relative SenML times).
        window_us: (received, earliest, latest) in microseconds since the Unix epoch: the
            receive time stored with each row and the observed times accepted.
        spot_allowed: (device, sensor) -> whether an `occupied` reading of that spot sensor
            is accepted; checked once per name, when it enters the name cache.
        count_limit: device -> the largest `occupied_spaces` it may report; also asked once
            per name, so the hot loop compares with the series' own bound as with any range.
    """
    if stream is Stream.STATUS or payload[:1] != b"[":
        return None  # status readings update device health: the general path does that
    try:
        raw = orjson.loads(payload)
        if not raw or len(raw) > MAX_RECORDS:
            return None
        return _rows(raw, device_id, stream, received, window_us, spot_allowed, count_limit)
    except (
        _NotSimpleError,
        orjson.JSONDecodeError,
        ValueError,
        TypeError,
        KeyError,
        OverflowError,
    ):
        return None


def _rows(  # noqa: PLR0912, PLR0915  (inlined on purpose: see the first comment)
    raw: list[Any],
    device_id: str,
    stream: Stream,
    now: float,
    window_us: tuple[int, int, int],
    spot_allowed: SpotCheck | None,
    count_limit: CountLimit | None,
) -> FastRows:
    # The hot loop of ingest, some 2 us per reading: each function call or global lookup
    # saved here is a few per cent, so the common cases (a boolean, a sequence number, a
    # relative time) are written inline, module constants are bound to locals, and the row's
    # COPY bytes are packed here (store.reading_rows.append_row, inlined).
    received_us, earliest_us, latest_us = window_us
    received_pg = received_us - POSTGRES_EPOCH_US
    epoch_pg = POSTGRES_EPOCH_US
    relative_limit, max_time = RELATIVE_TIME_LIMIT, MAX_ABSOLUTE_TIME
    pack_with_seq, pack_without_seq = PACK_WITH_SEQ, PACK_WITHOUT_SEQ
    simple_fields = _FIELDS.issuperset
    names = _series_names(device_id, stream)
    base_name = ""
    base_time = 0.0
    encoded = bytearray()
    seqs: list[int] = []
    floors: list[int] = []
    times: list[int] = []
    for item in raw:
        if type(item) is not dict or not simple_fields(item):
            raise _NotSimpleError
        if "bn" in item:
            base_name = _text(item["bn"])
        if "bt" in item:
            base_time = _number(item["bt"])
        # Which field holds the value, as _has_value, inlined.
        if "u" in item and type(item["u"]) is not str:
            raise _NotSimpleError  # the kernel checks the unit's type even where unused
        has_v = "v" in item
        if has_v is ("vb" in item):
            if has_v or "n" in item:
                raise _NotSimpleError  # both values, or a named record without one
            continue  # a record that only sets base fields
        if "n" in item:
            name = item["n"]
            if type(name) is not str:
                raise _NotSimpleError
            name = base_name + name
        else:
            name = base_name
        series = names.get(name)
        if series is None:
            series = _name(name, device_id, stream, names, spot_allowed, count_limit)
        prefix, spec, boolean, maximum = series
        offset = item.get("t", 0.0)
        if type(offset) is not float and type(offset) is not int:
            raise _NotSimpleError
        time_value = base_time + (offset or 0.0)
        if -relative_limit < time_value < relative_limit:
            time_value += now
        if not 0 <= time_value <= max_time:  # also refuses NaN; inf fails the bound
            raise _NotSimpleError
        observed_us = round(time_value * 1_000_000)  # as streetsense.readings.epoch_to_datetime
        if not earliest_us <= observed_us <= latest_us:
            raise _NotSimpleError  # too late or in the future: rejected with a reason there
        if boolean:
            flag = item.get("vb")
            if has_v or type(flag) is not bool:
                raise _NotSimpleError
            value = 1.0 if flag else 0.0  # within every boolean kind's range
        else:
            value = _number_value(item, spec, has_v, maximum)
        if "seq_floor" in item:
            floors.append(_sequence(item["seq_floor"]))
        times.append(observed_us)
        encoded += prefix
        seq = item.get("seq")
        if seq is None:
            encoded += pack_without_seq(
                8, observed_us - epoch_pg, 8, received_pg, 8, value, -1, 1,
                item.get("clock_suspect") is True,
            )  # fmt: skip
        else:
            if type(seq) is not int or not 0 <= seq < _SEQ_LIMIT:
                raise _NotSimpleError
            seqs.append(seq)
            encoded += pack_with_seq(
                8, observed_us - epoch_pg, 8, received_pg, 8, value, 8, seq, 1,
                item.get("clock_suspect") is True,
            )  # fmt: skip
    if not times:
        raise _NotSimpleError
    return FastRows(
        encoded, len(times), seqs, max(floors) if floors else None, min(times), max(times)
    )


def _number_value(item: dict[str, Any], spec: Kind, has_v: bool, maximum: float) -> float:
    if not has_v:
        raise _NotSimpleError
    value = _number(item["v"])
    value = (value or 0.0) + 0.0  # as the kernel adds the (absent) base value
    value = spec.to_canonical(value, item.get("u") or None)
    if not spec.minimum <= value <= maximum:
        raise _NotSimpleError  # out of its physical range or its lot's: refused with a reason
    return value


def _series_names(device_id: str, stream: Stream) -> dict[str, _Series]:
    """Return the cache of one device's names on one stream."""
    key = (device_id, stream)
    names = _names.get(key)
    if names is None:
        if len(_names) >= _DEVICE_CACHE_SIZE:
            _names.clear()
        names = _names[key] = {}
    return names


def forget_names() -> None:
    """Forget every cached name: the registry changed (a spot may be gone, a capacity moved)."""
    _names.clear()


def _name(
    name: str,
    device_id: str,
    stream: Stream,
    names: dict[str, _Series],
    spot_allowed: SpotCheck | None,
    count_limit: CountLimit | None,
) -> _Series:
    """Check a name as the kernel does and remember its series; raise if it is not simple."""
    from streetsense.senml import _NAME_RE  # noqa: PLC0415  (the kernel's own name rule)

    full_name = name
    if not _NAME_RE.match(name) or not is_valid_id(device_id):
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
    if sub_id and not is_valid_id(sub_id):
        raise _NotSimpleError
    if spot_allowed is not None and kind_name == "occupied" and not spot_allowed(device_id, sub_id):
        raise _NotSimpleError  # not a registered spot: the general path refuses it with a reason
    maximum = spec.maximum
    if count_limit is not None and kind_name == "occupied_spaces":
        maximum = min(maximum, count_limit(device_id))
    if len(names) >= _NAMES_PER_DEVICE:
        names.clear()
    prefix = series_prefix(device_id, spec.name, sub_id)
    boolean = spec.value_type is ValueType.BOOLEAN
    found = names[full_name] = (prefix, spec, boolean, maximum)
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


def _sequence(value: Any) -> int:
    if type(value) is not int or not 0 <= value < _SEQ_LIMIT:
        raise _NotSimpleError
    return value
