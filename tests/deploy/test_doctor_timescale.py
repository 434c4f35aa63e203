"""How `doctor` judges TimescaleDB's jobs and workers, on every state a server reports.

The states come from the catalogs (tests/timescale/test_jobs.py reads them from real servers);
here each one is judged: what is a problem, what only a warning, and which fix is named.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from ingest.doctor import FAIL, OK, WARN
from ingest.doctor_timescale import PORTAL_FIX, jobs_checks, workers_check
from store.timescale_jobs import Job, Workers

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
PORTAL = 'cannot drop portal "" while it is being set up'


def job(job_id: int = 1000, **changes: object) -> Job:
    """Return a healthy compression policy job; changes make it otherwise."""
    healthy = Job(
        job_id=job_id,
        name=f"Columnstore Policy [{job_id}]",
        proc="policy_compression",
        relation="readings",
        scheduled=True,
        schedule_interval=timedelta(hours=12),
        last_status="Success",
        status="Scheduled",
        last_started=NOW - timedelta(hours=1),
        last_success=NOW - timedelta(hours=1),
        next_start=NOW + timedelta(hours=11),
        failures=0,
        last_error=None,
        last_error_at=None,
    )
    return replace(healthy, **changes)  # type: ignore[arg-type]


def failed(job_id: int, error: str) -> Job:
    """Return a job whose last run failed with this error."""
    return job(job_id, last_status="Failed", failures=3, last_error=error, last_error_at=NOW)


def test_healthy_jobs_are_one_ok_line() -> None:
    checks = jobs_checks([job(1000), job(1001), job(1002, next_start=None)], NOW)
    assert [(c.status, c.detail) for c in checks] == [
        (OK, "3 jobs, none failing, overdue or paused")
    ]


def test_jobs_failing_alike_are_one_problem_naming_each_job_and_the_error() -> None:
    checks = jobs_checks([failed(3, PORTAL), failed(1000, PORTAL), job(1001)], NOW)
    assert len(checks) == 1
    assert checks[0].status == FAIL
    assert "2 job(s) failed their last run" in checks[0].detail
    assert "3 policy_compression (readings), 1000 policy_compression (readings)" in (
        checks[0].detail
    )
    assert checks[0].detail.endswith(PORTAL)
    assert checks[0].fix == PORTAL_FIX and "docs/deploy.md" in PORTAL_FIX


def test_another_failure_says_how_to_see_the_whole_error() -> None:
    checks = jobs_checks([failed(1000, PORTAL), failed(1005, "deadlock detected\nDETAIL: x")], NOW)
    assert [c.status for c in checks] == [FAIL, FAIL]
    other = next(c for c in checks if "deadlock detected" in c.detail)
    assert "DETAIL" not in other.detail
    assert "CALL run_job(1005)" in other.fix


@pytest.mark.parametrize(
    ("late_by", "stalled"),
    [(timedelta(hours=11), False), (timedelta(hours=13), True)],
)
def test_a_job_is_stalled_once_a_whole_interval_late(late_by: timedelta, stalled: bool) -> None:
    checks = jobs_checks([job(1000, next_start=NOW - late_by)], NOW)
    assert (checks[0].status == FAIL) == stalled
    if stalled:
        assert "1 job(s) overdue" in checks[0].detail


def test_a_five_minute_job_gets_ten_minutes_before_it_counts_as_stalled() -> None:
    refresh = job(1001, schedule_interval=timedelta(minutes=5))
    assert (
        jobs_checks([replace(refresh, next_start=NOW - timedelta(minutes=9))], NOW)[0].status == OK
    )
    late = jobs_checks([replace(refresh, next_start=NOW - timedelta(minutes=11))], NOW)
    assert late[0].status == FAIL


def test_a_long_run_and_a_paused_job_are_warnings() -> None:
    running = job(1000, status="Running", last_started=NOW - timedelta(hours=25), next_start=None)
    paused = job(1001, scheduled=False, next_start=NOW - timedelta(days=3))
    checks = jobs_checks([running, paused], NOW)
    assert [c.status for c in checks] == [WARN, WARN]
    assert "running for over twice their interval: 1000" in checks[0].detail
    assert "paused: 1001" in checks[1].detail
    assert "alter_job" in checks[1].fix


@pytest.mark.parametrize(
    ("workers", "status"),
    [
        (Workers(25, 8, 16, 0), OK),
        (Workers(20, 8, 16, 0), WARN),  # short only when parallel queries take workers
        (Workers(20, 8, 16, 3), FAIL),  # ... and it happened
        (Workers(8, 8, 16, 0), FAIL),  # TimescaleDB alone can need more than there are
        (Workers(8, 8, None, 0), WARN),  # no background workers at all (PGlite)
    ],
)
def test_workers_are_enough_for_the_launcher_jobs_and_parallel_queries(
    workers: Workers, status: str
) -> None:
    check = workers_check(workers)
    assert check.status == status
    if status == FAIL:
        assert "max_worker_processes = 25" in check.fix
        assert "restart PostgreSQL" in check.fix
