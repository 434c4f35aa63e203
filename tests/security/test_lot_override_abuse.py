"""Abuse of the override command: unknown lots, injection, oversize and control characters,
times in the past or far future. Each is refused with the fix, and nothing is written."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from store.registry import store_registry
from streetsense.registry import load_registry
from tests.support.cli import streetsense

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "registry.example.toml"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["close", "nowhere", "--reason", "x"], "there is no active lot 'nowhere'"),
        (["close", "x'; DROP TABLE lots; --", "--reason", "x"], "there is no active lot"),
        (["close", "market-street", "--reason", "x" * 201], "reason must be 1 to 200"),
        (["close", "market-street", "--reason", "a\x1b[2Jb"], "plain text"),
        (["close", "market-street", "--reason", "ok", "--by", "x" * 101], "by must be 1 to 100"),
        (["close", "market-street", "--reason", "ok", "--until", "2000-01-01"], "after now"),
        (["close", "market-street", "--reason", "ok", "--until", "2999-01-01"], "a year ahead"),
        (["close", "market-street", "--reason", "ok", "--until", "soon"], "--until"),
        (["clear", "nowhere"], "there is no active lot"),
    ],
)
def test_refused_and_nothing_written(
    db: psycopg.Connection, database_url: str, args: list[str], message: str
) -> None:
    store_registry(db, load_registry(EXAMPLE), "example")
    db.commit()
    done = streetsense(database_url, "registry", *args)
    assert done.returncode != 0
    assert message in done.stderr, done.stderr
    assert db.execute("SELECT count(*) FROM lot_status_overrides").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM lot_status_audit").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM lots").fetchone() == (2,)


def test_the_feeds_role_cannot_read_who_closed_a_lot(db: psycopg.Connection) -> None:
    # who set an override is personal: the feeds read lot_status_public, never the tables
    privileges: dict[str, bool] = dict(
        db.execute(
            "SELECT c, has_table_privilege('streetsense_feeds', c, 'SELECT') FROM unnest("
            "ARRAY['lot_status_overrides', 'lot_status_audit', 'lot_status_public']) c"
        ).fetchall()
    )
    assert privileges == {
        "lot_status_overrides": False, "lot_status_audit": False, "lot_status_public": True,
    }  # fmt: skip
    columns = [r[0] for r in db.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = "
        "'lot_status_public'").fetchall()]  # fmt: skip
    assert "set_by" not in columns
    writes = db.execute(
        "SELECT has_table_privilege('streetsense_dashboard', 'lot_status_audit', 'UPDATE'), "
        "has_table_privilege('streetsense_dashboard', 'lot_status_audit', 'DELETE'), "
        "has_table_privilege('streetsense_dashboard', 'lot_status_audit', 'INSERT')"
    ).fetchone()
    assert writes == (False, False, True)  # the audit log is append-only for the dashboard
