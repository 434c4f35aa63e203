"""A digest of what the static tables publish, so a status can name the table it refers to."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import orjson

from feeds.model import LotView


def table_version(lots: Sequence[LotView]) -> str:
    """Return a short digest of every lot's static description (same lots, same version)."""
    static = [
        (lot.id, lot.name, lot.kind, lot.capacity, lot.lat, lot.lon, lot.opening_hours,
         [(c.category, c.capacity) for c in lot.categories], lot.facts)
        for lot in lots
    ]  # fmt: skip
    return hashlib.blake2b(orjson.dumps(static), digest_size=8).hexdigest()
