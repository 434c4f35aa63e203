"""`streetsense registry close|open|clear|status|audit`: an operator's override, audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from store.registry import store_registry
from streetsense.registry import load_registry
from tests.support.cli import streetsense

EXAMPLE = Path(__file__).resolve().parents[1] / "deploy" / "registry.example.toml"


def test_close_then_clear_is_audited_with_who_and_why(
    db: psycopg.Connection, database_url: str
) -> None:
    store_registry(db, load_registry(EXAMPLE), "example")
    db.commit()
    until = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    closed = streetsense(
        database_url, "registry", "close", "market-street", "--reason", "street market",
        "--by", "j.hansen", "--until", until.isoformat(),
    )  # fmt: skip
    assert closed.returncode == 0, closed.stderr
    assert f"market-street: closed until {until.isoformat()}" in closed.stdout
    status = streetsense(database_url, "registry", "status")
    rows = {line.split("\t")[0]: line.split("\t") for line in status.stdout.splitlines()}
    assert rows["market-street"][1:4] == ["closed", "operator by j.hansen", "street market"]
    assert rows["harbour-garage"][2] == "opening_hours"
    cleared = streetsense(database_url, "registry", "clear", "market-street", "--by", "ops")
    assert cleared.returncode == 0, cleared.stderr
    again = streetsense(database_url, "registry", "status").stdout
    assert "market-street\topen\topening_hours\topen at all times" in again
    audit = streetsense(database_url, "registry", "audit", "market-street").stdout.splitlines()
    assert audit[0].split("\t") == ["at", "lot_id", "action", "status", "reason", "actor", "via",
                                    "until"]  # fmt: skip
    newest, oldest = audit[1].split("\t"), audit[2].split("\t")
    assert newest[2:7] == ["clear", "", "override cleared", "ops", "cli"]
    assert oldest[2:7] == ["set", "closed", "street market", "j.hansen", "cli"]
    assert db.execute("SELECT count(*) FROM lot_status_overrides").fetchone() == (0,)


def test_open_override_and_default_actor(db: psycopg.Connection, database_url: str) -> None:
    store_registry(db, load_registry(EXAMPLE), "example")
    db.commit()
    done = streetsense(database_url, "registry", "open", "harbour-garage", "--reason", "event")
    assert done.returncode == 0, done.stderr
    row = db.execute("SELECT status, set_by FROM lot_status_overrides").fetchone()
    assert row is not None and row[0] == "open" and row[1]  # the login name
