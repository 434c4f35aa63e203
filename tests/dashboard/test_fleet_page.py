"""The fleet on the Sensors and devices page: what each enrolled device runs, pending serials,
rollouts, and decisions queued with who made them (read and written through store/ only)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pandas as pd
import psycopg
import pytest

from tests.dashboard.conftest import City, query
from tests.dashboard.test_pages import Run, metrics

BATCH = "dash-b"


def _frame(at: object, column: str) -> pd.DataFrame:
    for element in at.dataframe:  # type: ignore[attr-defined]
        if column in element.value.columns:
            frame: pd.DataFrame = element.value
            return frame
    raise AssertionError(f"no table with a {column} column")


@pytest.fixture
def enrolled(city: City) -> Iterator[list[str]]:
    """Enrol three of the city's devices (one revoked), one pending serial, a failed rollout."""
    devices = city.filled.devices[:3]
    now = datetime.now(UTC)
    with psycopg.connect(city.url) as conn:
        conn.execute(
            "INSERT INTO fleet_batches VALUES (%s, 'claim-dash-b', %s, 'test', %s, NULL, '')",
            (BATCH, now, now + timedelta(days=30)),
        )
        for n, device in enumerate(devices):  # the second device runs config 8, not 9
            conn.execute(
                "INSERT INTO fleet_devices (device_id, serial, batch_id, username, enrolled_at, "
                "issued_at, rotate_after, expires_at, version, config_version, revoked_at, "
                "intended_config_version) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, '0.1.0', %s, %s, %s)",
                (device, f"SN-D{n}", BATCH, device, now, now, now + timedelta(days=1),
                 now + timedelta(days=3 if n == 0 else 60), str(7 + n),
                 now if n == 2 else None, "9" if n == 1 else ""),
            )  # fmt: skip
        conn.execute(
            "INSERT INTO fleet_enrolments (serial, batch_id, state, password_sha256, hardware, "
            "first_at, last_at) VALUES ('SN-NEW-1', %s, 'pending', %s, %s, %s, %s)",
            (BATCH, "0" * 64, json.dumps({"model": "rpi4"}), now, now),
        )
        conn.execute(
            "INSERT INTO fleet_releases VALUES ('0.2.0', %s, 1000, '{}', %s, 'tester')",
            ("a" * 64, now),
        )
        rollout = conn.execute(
            "INSERT INTO fleet_rollouts (version, state, canary_share, waves, deadline_s, "
            "soak_s, started_at, started_by, reason) VALUES ('0.2.0', 'failed', 0.1, 2, 60, 10,"
            " %s, 'tester', 'canary rolled back') RETURNING rollout_id",
            (now,),
        ).fetchone()
        assert rollout is not None
        conn.execute(
            "INSERT INTO fleet_rollout_devices (rollout_id, device_id, wave, state, reason) "
            "VALUES (%s, %s, 0, 'rolled_back', 'exited with code 1')",
            (rollout[0], devices[0]),
        )
    yield devices
    with psycopg.connect(city.url) as conn:
        for table in (
            "fleet_rollout_devices",
            "fleet_rollouts",
            "fleet_releases",
            "fleet_enrolments",
            "fleet_devices",
            "fleet_actions",
            "fleet_batches",
        ):
            conn.execute(f"DELETE FROM {table}")  # type: ignore[arg-type]  # fmt: skip


def test_the_fleet_shows_releases_credentials_rollouts_and_pending_serials(
    app: Run, enrolled: list[str]
) -> None:
    at = app("devices")
    shown = metrics(at)
    assert shown["Enrolled devices"] == "3"
    assert shown["Pending enrolments"] == "1"
    assert shown["Rollout"] == "none"
    assert shown["Credentials expiring"] == "1"  # the first; the revoked one does not count
    assert shown["Revoked"] == "1"
    assert shown["Config drift"] == "1"
    fleet = _frame(at, "config_version").set_index("device_id")
    assert list(fleet.loc[enrolled, "config_version"]) == ["7", "8", "9"]
    assert fleet.loc[enrolled[0], "rollout"] == "0.2.0: rolled_back (exited with code 1)"
    assert fleet.loc[enrolled[2], "state"] == "revoked"
    assert list(fleet.loc[enrolled, "config_drift"]) == [False, True, False]
    pending = _frame(at, "allow_listed")
    assert list(pending["serial"]) == ["SN-NEW-1"]
    rollouts = _frame(at, "ended_by")
    assert list(rollouts["state"]) == ["failed"]


def test_filters_narrow_the_fleet_by_state(app: Run, enrolled: list[str]) -> None:
    at = app("devices")
    at.multiselect[1].set_value(["revoked"]).run()
    assert list(_frame(at, "config_version")["device_id"]) == [enrolled[2]]


def test_an_approval_and_a_revocation_are_queued_with_who_decided(
    app: Run, city: City, enrolled: list[str]
) -> None:
    at = app("devices")
    at.text_input(key="enrolment-by").set_value("field engineer ana")
    at.button(key="enrolment-submit").click().run()
    assert not at.exception
    at.selectbox(key="action-device").set_value(enrolled[1])
    at.text_input(key="action-reason").set_value("stolen from pole 7")
    at.text_input(key="device-action-by").set_value("field engineer ana")
    at.button(key="action-submit").click().run()
    queued = query(city.url, "SELECT action, subject, requested_by, args FROM fleet_actions "
                   "ORDER BY action_id")  # fmt: skip
    assert queued == [
        ("approve", "SN-NEW-1", "field engineer ana", {}),
        ("revoke", enrolled[1], "field engineer ana", {"reason": "stolen from pole 7"}),
    ]


def test_a_revocation_without_a_reason_or_name_is_not_queued(
    app: Run, city: City, enrolled: list[str]
) -> None:
    at = app("devices")
    at.selectbox(key="action-device").set_value(enrolled[0])
    at.text_input(key="device-action-by").set_value("ana")
    at.button(key="action-submit").click().run()
    assert any("Say why" in e.value for e in at.error)
    at.text_input(key="action-reason").set_value("broken")
    at.text_input(key="device-action-by").set_value("")
    at.button(key="action-submit").click().run()
    assert any("Say who" in e.value for e in at.error)
    assert query(city.url, "SELECT count(*) FROM fleet_actions") == [(0,)]
