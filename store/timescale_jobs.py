"""TimescaleDB's background jobs and the worker settings they run under, for `doctor`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

# One row per job, with its last recorded error; job_stats has a row only once a job was
# scheduled, so jobs come first. Times that are not set yet read -infinity, which psycopg
# refuses, so they come back as NULL.
_JOBS = """
SELECT j.job_id, j.application_name, j.proc_name, j.hypertable_name, j.scheduled,
       j.schedule_interval, s.last_run_status, s.job_status,
       CASE WHEN isfinite(s.last_run_started_at) THEN s.last_run_started_at END,
       CASE WHEN isfinite(s.last_successful_finish) THEN s.last_successful_finish END,
       CASE WHEN isfinite(s.next_start) THEN s.next_start END,
       coalesce(s.total_failures, 0), e.err_message, e.finished
FROM timescaledb_information.jobs j
LEFT JOIN timescaledb_information.job_stats s ON s.job_id = j.job_id
LEFT JOIN LATERAL (
    SELECT err_message, CASE WHEN isfinite(finish_time) THEN finish_time END AS finished
    FROM timescaledb_information.job_errors x
    WHERE x.job_id = j.job_id
    ORDER BY start_time DESC NULLS LAST
    LIMIT 1
) e ON true
ORDER BY j.job_id
"""
# A job the scheduler could not hand to a worker (max_worker_processes or
# timescaledb.max_background_workers exhausted) is recorded with this text.
_LAUNCH_FAILURE = "%failed to start%"


@dataclass(frozen=True, slots=True)
class Job:
    """One TimescaleDB job and how its runs went."""

    job_id: int
    name: str
    proc: str
    relation: str | None  # the hypertable or continuous aggregate it works on
    scheduled: bool
    schedule_interval: timedelta
    last_status: str | None  # Success, Failed; None before the first run
    status: str | None  # Scheduled, Running, Paused
    last_started: datetime | None
    last_success: datetime | None
    next_start: datetime | None
    failures: int
    last_error: str | None
    last_error_at: datetime | None


@dataclass(frozen=True, slots=True)
class Workers:
    """The settings that bound how many jobs can run at once."""

    max_worker_processes: int
    max_parallel_workers: int
    max_background_workers: int | None  # None unless TimescaleDB's loader runs
    launch_failures_last_day: int


def read_jobs(conn: psycopg.Connection) -> tuple[list[Job], datetime]:
    """Return every job (TimescaleDB's own included) and the server's clock."""
    jobs = [Job(*row) for row in conn.execute(_JOBS).fetchall()]
    now = conn.execute("SELECT now()").fetchone()
    assert now is not None  # a SELECT without FROM returns one row
    return jobs, now[0]


def read_workers(conn: psycopg.Connection) -> Workers:
    """Return the worker settings and how many job launches failed in the last day."""
    row = conn.execute(
        "SELECT current_setting('max_worker_processes')::int,"
        " current_setting('max_parallel_workers')::int,"
        " (SELECT setting::int FROM pg_settings"
        "  WHERE name = 'timescaledb.max_background_workers'),"
        " (SELECT count(*) FROM timescaledb_information.job_errors"
        "  WHERE err_message LIKE %s AND start_time > now() - interval '1 day')",
        (_LAUNCH_FAILURE,),
    ).fetchone()
    assert row is not None  # a SELECT without FROM returns one row
    return Workers(int(row[0]), int(row[1]), row[2], int(row[3]))


def job_errors_visible(conn: psycopg.Connection) -> bool:
    """Tell whether job_errors shows this user every job's errors.

    TimescaleDB shows them to members of the database owner's role and of each job's owner.
    """
    row = conn.execute(
        "SELECT pg_has_role(current_user, 'pg_database_owner', 'MEMBER')"
        " OR coalesce((SELECT bool_and(pg_has_role(current_user, owner, 'MEMBER'))"
        "  FROM timescaledb_information.jobs), true)"
    ).fetchone()
    return bool(row and row[0])
