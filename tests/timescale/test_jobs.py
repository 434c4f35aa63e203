"""`streetsense doctor` reads TimescaleDB's jobs and worker settings from a real server.

Overdue jobs are made on PGlite, which never runs them; a failing job needs a real scheduler,
so that test runs on a native server (STREETSENSE_TEST_TIMESCALE_URL) only.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from harness.ingest import wait_until
from ingest.doctor import FAIL, OK, WARN
from ingest.doctor_timescale import timescale_checks
from store.timescale_jobs import job_errors_visible, read_jobs, read_workers
from streetsense.config import Settings, load_settings, with_overrides
from tests.timescale.conftest import NO_WORKERS

pytestmark = pytest.mark.timescale
OUR_JOBS = {
    ("policy_compression", "readings"),
    ("policy_retention", "readings"),
    ("policy_refresh_continuous_aggregate", "flow_lanes_5m"),
    ("policy_compression", "occupancy_5m"),
}


def on(url: str) -> Settings:
    """Return settings that require TimescaleDB at url."""
    return with_overrides(load_settings(None, environ={}), database={"url": url, "timescale": "on"})


def readings_compression_job(conn: psycopg.Connection) -> int:
    """Return the id of the compression policy of readings."""
    row = conn.execute(
        "SELECT job_id FROM timescaledb_information.jobs"
        " WHERE proc_name = 'policy_compression' AND hypertable_name = 'readings'"
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_jobs_and_workers_are_read(tsdb: psycopg.Connection, timescale_native: bool) -> None:
    jobs, _ = read_jobs(tsdb)
    assert {(job.proc, job.relation) for job in jobs} >= OUR_JOBS
    assert all(job.schedule_interval.total_seconds() > 0 for job in jobs)
    workers = read_workers(tsdb)
    settings = dict(
        tsdb.execute(
            "SELECT name, setting::int FROM pg_settings WHERE name IN ('max_worker_processes',"
            " 'max_parallel_workers', 'timescaledb.max_background_workers')"
        ).fetchall()
    )
    assert workers.max_worker_processes == settings["max_worker_processes"]
    assert workers.max_parallel_workers == settings["max_parallel_workers"]
    assert workers.max_background_workers == settings.get("timescaledb.max_background_workers")
    assert (workers.max_background_workers is not None) == timescale_native


def test_doctor_reports_an_overdue_job(
    tsdb: psycopg.Connection, timescale_url: str, timescale_native: bool
) -> None:
    if timescale_native:
        pytest.skip("a native scheduler runs an overdue job at once; PGlite never runs it")
    job = readings_compression_job(tsdb)
    tsdb.execute("SELECT alter_job(%s, next_start => now() - interval '3 days')", (job,))
    try:
        checks = timescale_checks(tsdb, on(timescale_url))
    finally:
        tsdb.execute("SELECT alter_job(%s, next_start => now() + interval '1 hour')", (job,))
    assert checks[0].name == "TimescaleDB" and checks[0].status == OK
    assert checks[1].name == "background workers" and checks[1].status == WARN
    overdue = [c for c in checks if c.name == "TimescaleDB jobs" and c.status == FAIL]
    assert len(overdue) == 1
    assert f"{job} policy_compression (readings)" in overdue[0].detail
    assert "start_background_workers" in overdue[0].fix


@pytest.fixture
def failing_job(tsdb: psycopg.Connection, timescale_native: bool) -> Iterator[int]:
    """Return the id of a job whose procedure raises; the native scheduler runs it at once."""
    if not timescale_native:
        pytest.skip(NO_WORKERS)
    name = f"ss_fails_{uuid.uuid4().hex[:8]}"
    procedure = sql.Identifier(name)
    tsdb.execute(
        sql.SQL(
            "CREATE PROCEDURE {} (job_id int, config jsonb) LANGUAGE plpgsql AS"
            " $$ BEGIN RAISE EXCEPTION 'the detector table is missing'; END $$"
        ).format(procedure)
    )
    row = tsdb.execute("SELECT add_job(%s::regproc, '1 hour')", (name,)).fetchone()
    assert row is not None
    try:
        yield int(row[0])
    finally:
        tsdb.execute("SELECT delete_job(%s)", (row[0],))
        tsdb.execute(sql.SQL("DROP PROCEDURE {}").format(procedure))


def test_doctor_reports_a_failing_job_with_its_error(
    tsdb: psycopg.Connection, timescale_url: str, failing_job: int
) -> None:
    def failed() -> bool:
        jobs, _ = read_jobs(tsdb)
        return any(j.job_id == failing_job and j.last_status == "Failed" for j in jobs)

    assert wait_until(failed, timeout=60)
    checks = timescale_checks(tsdb, on(timescale_url))
    failing = [c for c in checks if "the detector table is missing" in c.detail]
    assert len(failing) == 1
    assert failing[0].status == FAIL
    assert f"CALL run_job({failing_job})" in failing[0].fix


def test_a_user_who_cannot_see_job_errors_is_told(tsdb: psycopg.Connection) -> None:
    assert job_errors_visible(tsdb)
    role = sql.Identifier(f"ss_reader_{uuid.uuid4().hex[:8]}")
    tsdb.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(role))
    try:
        tsdb.execute(sql.SQL("SET ROLE {}").format(role))
        assert not job_errors_visible(tsdb)
    finally:
        tsdb.execute("RESET ROLE")
        tsdb.execute(sql.SQL("DROP ROLE {}").format(role))
