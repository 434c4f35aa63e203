"""The feeds' reads work under the least-privilege `streetsense_feeds` role."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from feeds import sources
from store.feeds_reads import lot_history


def test_every_feeds_read_runs_as_the_feeds_role(busy_city: psycopg.Connection) -> None:
    exists = busy_city.execute("SELECT 1 FROM pg_roles WHERE rolname = 'streetsense_feeds'")
    if exists.fetchone() is None:
        pytest.skip("the streetsense_feeds role is not created on this server")
    busy_city.commit()
    busy_city.execute("SET ROLE streetsense_feeds")
    registry, live, _ = sources.read_full(busy_city)
    assert live.occupied("harbour") is not None
    sources.read_recent(busy_city, None, ())
    context = sources.read_context(busy_city, {lot.lot_id: lot.capacity for lot in registry.lots})
    assert context.lot_curves
    now = datetime.now(UTC)
    assert lot_history(busy_city, "harbour", now - timedelta(hours=1), now, "5m")
    busy_city.rollback()
    busy_city.execute("RESET ROLE")
