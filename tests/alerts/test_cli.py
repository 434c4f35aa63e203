"""`streetsense alerts` end to end: check, run, list, ack, through the real command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg

from tests.alerts.support import at, health, load_city

RULES = """
defaults = false

[[rule]]
name = "offline"
kind = "device_offline"
after_min = 15
"""


def streetsense(*args: str, url: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREETSENSE_")}
    env["STREETSENSE_DATABASE_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "streetsense.cli", *args],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip


def test_check_accepts_a_good_file_and_names_the_line_of_a_mistake(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(RULES)
    done = streetsense("alerts", "check", str(good))
    assert done.returncode == 0, done.stderr
    assert "offline" in done.stdout and "1 rules" in done.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(RULES.replace("after_min = 15", "after_mn = 15"))
    done = streetsense("alerts", "check", str(bad))
    assert done.returncode == 2
    assert f"{bad}:7: rule 'offline': unknown key 'after_mn'" in done.stderr
    assert "did you mean 'after_min'?" in done.stderr


def test_run_list_and_acknowledge(
    tmp_path: Path, database_url: str, db: psycopg.Connection
) -> None:
    load_city(db)
    health(db, ["counter", "gw", "loop"], at(0))  # a past day: all offline by now
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    done = streetsense("alerts", "run", "--once", "--rules", str(rules), url=database_url)
    assert done.returncode == 0, done.stderr
    listed = streetsense("alerts", "list", "--json", url=database_url)
    active = [json.loads(line) for line in listed.stdout.splitlines()]
    assert sorted(a["subject_id"] for a in active) == ["counter", "gw", "loop"]
    assert {a["state"] for a in active} == {"firing"}
    target = next(a for a in active if a["subject_id"] == "gw")
    done = streetsense(
        "alerts", "ack", str(target["alert_id"]), "--by", "ana", "--note", "van sent",
        url=database_url,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    again = streetsense("alerts", "ack", str(target["alert_id"]), "--by", "bo", url=database_url)
    assert again.returncode == 1 and "not firing" in again.stderr
    listed = streetsense("alerts", "list", "--json", url=database_url)
    by_subject = {a["subject_id"]: a for a in map(json.loads, listed.stdout.splitlines())}
    assert by_subject["gw"]["state"] == "acknowledged"
    assert by_subject["gw"]["acked_by"] == "ana" and by_subject["gw"]["ack_note"] == "van sent"
    # active first: the acknowledged one comes after the firing ones
    assert list(by_subject)[-1] == "gw"
