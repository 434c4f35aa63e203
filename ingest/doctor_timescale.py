"""`streetsense doctor`'s TimescaleDB checks: the backend in use, background workers, jobs."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

from ingest.doctor import FAIL, OK, WARN, Check

if TYPE_CHECKING:
    import psycopg

    from store.backend import BackendChoice, TimescaleFacts
    from store.timescale_jobs import Job, Workers
    from streetsense.config import Settings

# A job is stalled once it is this much later than a whole schedule interval past its start.
OVERDUE_GRACE: Final = timedelta(minutes=10)
LONG_RUN_FLOOR: Final = timedelta(hours=1)
# PostgreSQL 15.20's PortalDrop refuses the portal TimescaleDB's job runner creates and never
# starts (tsl/src/bgw_policy/job.c): the job's work is committed, its run recorded as failed.
PORTAL_ERROR: Final = "cannot drop portal"
LAUNCH_ERROR: Final = "failed to start"  # the scheduler found no free worker
PORTAL_FIX: Final = (
    "TimescaleDB's job runner and this PostgreSQL minor release disagree: the job did its work "
    "but is recorded as failed and retried less often; docs/deploy.md, 'TimescaleDB', says "
    "which versions and what to do"
)
WORKERS_FIX: Final = (
    "set max_worker_processes = {needed} in postgresql.conf and restart PostgreSQL, or lower "
    "timescaledb.max_background_workers / max_parallel_workers (docs/deploy.md, 'TimescaleDB')"
)


def timescale_checks(conn: psycopg.Connection, settings: Settings) -> list[Check]:
    """Check the backend choice, and where TimescaleDB is in use, its workers and jobs."""
    from store.backend import choose_backend, read_timescale_facts  # noqa: PLC0415
    from store.timescale_jobs import (  # noqa: PLC0415
        job_errors_visible,
        read_jobs,
        read_workers,
    )
    from streetsense.errors import ConfigError  # noqa: PLC0415

    facts = read_timescale_facts(conn)
    try:
        choice = choose_backend(settings.database.timescale, facts)
    except ConfigError as exc:
        return [Check("TimescaleDB", FAIL, str(exc))]
    checks = [backend_check(facts, choice, settings.database.timescale)]
    if choice.timescale and facts.installed:
        checks.append(workers_check(read_workers(conn)))
        checks += jobs_checks(*read_jobs(conn))
        if not job_errors_visible(conn):
            checks.append(
                Check(
                    "TimescaleDB jobs",
                    WARN,
                    "this user sees no job errors: TimescaleDB shows them to the database owner"
                    " and the jobs' owner only (failures above come without their error, and"
                    " launch failures are not counted)",
                    "run `streetsense doctor` with the schema owner's database.url as well",
                )
            )
    return checks


def backend_check(facts: TimescaleFacts, choice: BackendChoice, mode: str) -> Check:
    """Say which backend the schema uses (or will use) and why."""
    if choice.timescale:
        detail = f"in use ({choice.reason})"
        if choice.create_extension:
            detail = f"{facts.version} preloaded; `streetsense db migrate` creates the extension"
        return Check("TimescaleDB", OK, detail)
    detail = f"plain PostgreSQL is used: {choice.reason}"
    if choice.unused_timescale:
        return Check("TimescaleDB", WARN, detail)
    if mode.lower() == "auto":
        return Check(
            "TimescaleDB",
            WARN,
            detail,
            "for a city's volumes install TimescaleDB (compression, chunking); docs/deploy.md",
        )
    return Check("TimescaleDB", OK, detail)


def workers_check(workers: Workers) -> Check:
    """Check that PostgreSQL has a worker for TimescaleDB's launcher, jobs and parallel queries."""
    name = "background workers"
    if workers.max_background_workers is None:
        return Check(name, WARN, "TimescaleDB runs no background workers here: no policy runs")
    needed = 1 + workers.max_background_workers + workers.max_parallel_workers
    sums = (
        f"max_worker_processes {workers.max_worker_processes}, needed 1 (TimescaleDB's launcher)"
        f" + timescaledb.max_background_workers {workers.max_background_workers}"
        f" + max_parallel_workers {workers.max_parallel_workers} = {needed}"
    )
    failed = workers.launch_failures_last_day
    if workers.max_worker_processes >= needed:
        return Check(name, OK, sums)
    status = (
        FAIL
        if failed or workers.max_worker_processes < 1 + workers.max_background_workers
        else WARN
    )
    return Check(
        name,
        status,
        f"{sums}; {failed} job launch(es) failed in the last day",
        WORKERS_FIX.format(needed=needed),
    )


def jobs_checks(jobs: list[Job], now: datetime) -> list[Check]:
    """Report jobs whose last run failed, that are overdue, running long or paused."""
    checks = _failing(jobs)
    stalled = [job for job in jobs if _overdue(job, now)]
    if stalled:
        checks.append(
            Check(
                "TimescaleDB jobs",
                FAIL,
                f"{len(stalled)} job(s) overdue by more than their interval: {_names(stalled)}",
                "the scheduler is stopped or short of workers: see 'background workers' above and"
                " the server log; SELECT _timescaledb_functions.start_background_workers()"
                " restarts it",
            )
        )
    running = [job for job in jobs if _running_long(job, now)]
    if running:
        checks.append(
            Check(
                "TimescaleDB jobs",
                WARN,
                f"{len(running)} job(s) running for over twice their interval: {_names(running)}",
                "look for lock waits in pg_stat_activity (application_name is the job's name)",
            )
        )
    paused = [job for job in jobs if not job.scheduled]
    if paused:
        checks.append(
            Check(
                "TimescaleDB jobs",
                WARN,
                f"{len(paused)} job(s) paused: {_names(paused)}",
                "SELECT alter_job(<job id>, scheduled => true) resumes one",
            )
        )
    if not checks:
        checks.append(
            Check("TimescaleDB jobs", OK, f"{len(jobs)} jobs, none failing, overdue or paused")
        )
    return checks


def _failing(jobs: list[Job]) -> list[Check]:
    by_error: dict[str, list[Job]] = defaultdict(list)
    for job in jobs:
        if job.last_status == "Failed":
            by_error[_first_line(job.last_error)].append(job)
    checks = []
    for error, failed in by_error.items():
        fix = _failure_fix(error, failed[0].job_id)
        last = max((job.last_error_at for job in failed if job.last_error_at), default=None)
        when = f" (last at {last:%Y-%m-%d %H:%M:%S %Z})" if last else ""
        checks.append(
            Check(
                "TimescaleDB jobs",
                FAIL,
                f"{len(failed)} job(s) failed their last run{when}: {_names(failed)}: {error}",
                fix,
            )
        )
    return checks


def _failure_fix(error: str, job_id: int) -> str:
    if PORTAL_ERROR in error:
        return PORTAL_FIX
    if LAUNCH_ERROR in error:
        return "PostgreSQL had no background worker free for it: see 'background workers'"
    return (
        f"the server log has the whole error; CALL run_job({job_id}) runs the job in your"
        " session and shows it"
    )


def _overdue(job: Job, now: datetime) -> bool:
    if not job.scheduled or job.status == "Running" or job.next_start is None:
        return False
    return now - job.next_start > max(job.schedule_interval, OVERDUE_GRACE)


def _running_long(job: Job, now: datetime) -> bool:
    if job.status != "Running" or job.last_started is None:
        return False
    return now - job.last_started > max(2 * job.schedule_interval, LONG_RUN_FLOOR)


def _names(jobs: list[Job]) -> str:
    return ", ".join(
        f"{job.job_id} {job.proc}" + (f" ({job.relation})" if job.relation else "") for job in jobs
    )


def _first_line(error: str | None) -> str:
    if not error:
        return "no error recorded"
    return error.strip().splitlines()[0]
