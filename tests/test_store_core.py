"""Core store: migrations are idempotent, writes deduplicate, rejections are kept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from store.db import describe_url
from store.migrate import available_migrations, migrate, schema_version
from store.writes import Rejection, write_readings, write_rejections
from streetsense.config import DatabaseSettings
from streetsense.readings import Reading

T0 = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)


def test_migrate_twice_changes_nothing(db: psycopg.Connection) -> None:
    assert migrate(db, DatabaseSettings(timescale="off")) == []
    assert schema_version(db) == max(m.version for m in available_migrations())


def test_duplicates_are_written_once(db: psycopg.Connection) -> None:
    readings = [
        Reading("gw", "occupied", T0 + timedelta(seconds=i), 1.0, "s1", seq=i) for i in range(100)
    ]
    received = [T0 + timedelta(minutes=1)] * 100
    with db.transaction():
        assert write_readings(db, readings, received) == 100
    with db.transaction():
        # delivered again, shuffled, plus 10 new ones
        again = readings[::-1] + [
            Reading("gw", "occupied", T0 - timedelta(seconds=i + 1), 0.0, "s1") for i in range(10)
        ]
        assert write_readings(db, again, received + [T0] * 10) == 10
    assert db.execute("SELECT count(*), count(seq) FROM readings").fetchone() == (110, 100)


def test_rejections_keep_a_capped_payload(db: psycopg.Connection) -> None:
    payload = b"x" * 10_000
    with db.transaction():
        write_rejections(db, [Rejection(T0, "t/a", "bad_payload", "not JSON", payload)], 100)
    row = db.execute(
        "SELECT reason, length(payload), payload_bytes FROM rejected_messages"
    ).fetchone()
    assert row == ("not JSON", 100, 10_000)


@pytest.mark.parametrize(
    ("url", "described"),
    [
        ("postgresql://postgres@db.example/streetsense", "db.example:5432/streetsense"),
        (
            "postgresql://postgres:secret@127.0.0.1:19442,127.0.0.1:19443/db"
            "?target_session_attrs=read-write",
            "127.0.0.1:19442,127.0.0.1:19443/db (read-write)",
        ),
        ("host=a,b port=5433 dbname=ss", "a:5433,b:5433/ss"),
        ("postgresql:///ss", "local socket:5432/ss"),
    ],
)
def test_database_urls_are_described_host_by_host_without_the_password(
    url: str, described: str
) -> None:
    assert describe_url(url) == described
