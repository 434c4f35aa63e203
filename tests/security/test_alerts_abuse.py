"""Abuse of what alerts add: forged or replayed webhooks, hostile notes, oversized input."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg

from alerts.webhook import sign, verify
from store import alerts as store

SECRET = b"0123456789abcdef0123456789abcdef"
BODY = b'{"delivery":1,"rule":"offline"}'


def test_a_receiver_refuses_a_forged_changed_or_re_dated_webhook() -> None:
    good = sign(SECRET, 1_800_000_000, BODY)
    assert verify(SECRET, "1800000000", BODY, good)
    assert not verify(b"another-secret-of-32-characters!", "1800000000", BODY, good)
    assert not verify(SECRET, "1800000000", BODY.replace(b"offline", b"online"), good)
    # the timestamp is signed: moving it (to slip past a receiver's age check) breaks it
    assert not verify(SECRET, "1800000999", BODY, good)
    assert not verify(SECRET, "not-a-number", BODY, good)
    assert not verify(SECRET, "1800000000", BODY, good.replace("sha256=", "sha1="))


def test_a_hostile_note_is_stored_as_text(db: psycopg.Connection) -> None:
    db.execute(
        "INSERT INTO alerts (rule, subject_kind, subject_id, severity, audience, state, since, "
        "fired_at) VALUES ('r', 'device', 'd1', 'warning', 'field', 'firing', now(), now())"
    )
    [(alert_id,)] = db.execute("SELECT alert_id FROM alerts").fetchall()
    note = "'); DROP TABLE alerts; -- <script>alert(1)</script>"
    assert store.acknowledge(db, alert_id, "<b>mallory</b>", note, datetime.now(UTC))
    [(by, stored)] = db.execute("SELECT acked_by, ack_note FROM alerts").fetchall()
    assert (by, stored) == ("<b>mallory</b>", note)
    [(events,)] = db.execute("SELECT count(*) FROM alert_events").fetchall()
    assert events == 1


def test_cli_bounds_who_and_the_note(db: psycopg.Connection, database_url: str) -> None:
    import os
    import subprocess
    import sys

    db.execute(
        "INSERT INTO alerts (rule, subject_kind, subject_id, severity, audience, state, since, "
        "fired_at) VALUES ('r', 'device', 'd1', 'warning', 'field', 'firing', now(), now())"
    )
    db.commit()
    [(alert_id,)] = db.execute("SELECT alert_id FROM alerts").fetchall()
    env = {**os.environ, "STREETSENSE_DATABASE_URL": database_url}
    done = subprocess.run(
        [sys.executable, "-m", "streetsense.cli", "alerts", "ack", str(alert_id),
         "--by", "x" * 10_000, "--note", "n" * 100_000],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [(by, note)] = db.execute("SELECT acked_by, ack_note FROM alerts").fetchall()
    assert len(by) == 200 and len(note) == 2000
    empty = subprocess.run(
        [sys.executable, "-m", "streetsense.cli", "alerts", "ack", str(alert_id), "--by", "  "],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert empty.returncode == 2 and "--by must name who acknowledges" in empty.stderr
