"""The storage backend: TimescaleDB when the server can run it, else plain PostgreSQL, and why.

`choose_backend` is checked on every state a server can be in. The facts it decides on are read
from real servers: the machine's PostgreSQL (no TimescaleDB), and a private cluster that has
TimescaleDB's control file in its extension folder but does not preload the library: what
`pg_available_extensions` and `shared_preload_libraries` show after installing the package and
before the restart. Its library is not there, so any attempt to create the extension would fail
the test. The preloaded states are read from PGlite and a native server (tests/timescale).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from harness.postgres import PrivateCluster, pg_config, server_bindir
from harness.scratch import empty_database
from store.backend import POSTGRESQL, TIMESCALE, TimescaleFacts, choose_backend
from store.backend import read_timescale_facts as read_facts
from streetsense.errors import ConfigError
from tests.support.cli import REPO

VERSION = "2.28.3"
CONTROL = f"""comment = 'TimescaleDB as its package installs it; the library is left out'
default_version = '{VERSION}'
module_pathname = '$libdir/timescaledb-{VERSION}'
relocatable = false
"""


def facts(**changes: object) -> TimescaleFacts:
    """Return the facts of a server with TimescaleDB preloaded and a new database."""
    base = {
        "installed": None,
        "available": VERSION,
        "loaded": True,
        "preload": "timescaledb",
        "preload_pending": False,
        "schema": None,
    }
    return TimescaleFacts(**{**base, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("mode", "state", "timescale", "create", "unused"),
    [
        ("auto", facts(), True, True, False),
        ("on", facts(), True, True, False),
        ("off", facts(), False, False, False),
        ("auto", facts(installed=VERSION), True, False, False),
        ("auto", facts(loaded=False, preload=""), False, False, True),
        ("auto", facts(available=None, loaded=False, preload=""), False, False, False),
        ("auto", facts(installed=VERSION, schema=TIMESCALE), True, False, False),
        ("on", facts(installed=VERSION, schema=TIMESCALE), True, False, False),
        ("auto", facts(schema=POSTGRESQL), False, False, True),
        ("auto", facts(schema=POSTGRESQL, loaded=False, preload=""), False, False, True),
        ("off", facts(schema=POSTGRESQL), False, False, False),
        ("auto", facts(schema=POSTGRESQL, available=None, loaded=False), False, False, False),
    ],
)
def test_the_backend_follows_the_server_and_an_existing_schema(
    mode: str, state: TimescaleFacts, timescale: bool, create: bool, unused: bool
) -> None:
    choice = choose_backend(mode, state)
    assert (choice.timescale, choice.create_extension, choice.unused_timescale) == (
        timescale,
        create,
        unused,
    )
    assert choice.reason


@pytest.mark.parametrize(
    ("mode", "state", "names"),
    [
        ("on", facts(loaded=False, preload="pg_stat_statements"), "shared_preload_libraries"),
        ("on", facts(available=None, loaded=False), "install it"),
        ("on", facts(schema=POSTGRESQL), "not converted"),
        ("off", facts(installed=VERSION, schema=TIMESCALE), "timescale=auto"),
        ("auto", facts(installed=VERSION, schema=TIMESCALE, loaded=False), "restart"),
        ("sometimes", facts(), "must be auto, on or off"),
    ],
)
def test_a_mode_that_cannot_be_honoured_is_one_line_with_the_fix(
    mode: str, state: TimescaleFacts, names: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        choose_backend(mode, state)
    message = str(caught.value)
    assert names.lower() in message.lower()
    assert "\n" not in message


def test_the_facts_of_plain_postgresql(db: psycopg.Connection, admin_url: str) -> None:
    found = read_facts(db)
    assert (found.installed, found.available, found.loaded) == (None, None, False)
    assert found.schema == POSTGRESQL  # the test database is migrated
    with psycopg.connect(admin_url) as admin:
        assert read_facts(admin).schema is None


@pytest.fixture(scope="module")
def unloaded_server(admin_url: str) -> Iterator[str]:
    """Return the admin URL of a cluster with TimescaleDB's control file but no preload."""
    bindir = server_bindir(admin_url)
    sharedir, pkglibdir = pg_config(bindir, "sharedir", "pkglibdir")
    # PostgreSQL finds its share and library folders relative to its own binary, so a copy
    # of the binary under another root reads the extension folder laid out there.
    root = Path(tempfile.mkdtemp(prefix="ss-pg-install-"))
    try:
        yield from _cluster_on(root, bindir, sharedir, pkglibdir)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _cluster_on(root: Path, bindir: Path, sharedir: Path, pkglibdir: Path) -> Iterator[str]:
    postgres = root / bindir.relative_to("/") / "postgres"
    postgres.parent.mkdir(parents=True)
    shutil.copy2(bindir / "postgres", postgres)
    (root / pkglibdir.relative_to("/")).parent.mkdir(parents=True, exist_ok=True)
    (root / pkglibdir.relative_to("/")).symlink_to(pkglibdir)
    share = root / sharedir.relative_to("/")
    share.mkdir(parents=True)
    for entry in sharedir.iterdir():
        if entry.name != "extension":
            (share / entry.name).symlink_to(entry)
    (share / "extension").mkdir()
    for entry in (sharedir / "extension").iterdir():
        (share / "extension" / entry.name).symlink_to(entry)
    (share / "extension" / "timescaledb.control").write_text(CONTROL)
    os.chmod(root, 0o755)  # the server runs as the postgres user when tests run as root
    # another library preloaded, where the installation has it: the message quotes the setting
    other = "pg_stat_statements" if (pkglibdir / "pg_stat_statements.so").is_file() else ""
    settings = {"shared_preload_libraries": f"'{other}'"}
    with PrivateCluster(bindir, settings=settings, postgres=postgres) as cluster:
        yield cluster.url


@pytest.fixture
def unloaded_database(unloaded_server: str) -> Iterator[str]:
    """Return the URL of a new, empty database on that cluster."""
    with empty_database(unloaded_server, "ss_unloaded") as url:
        yield url


def streetsense(url: str, mode: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the command line against a database with database.timescale = mode."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("STREETSENSE_")}
    env.update({"STREETSENSE_DATABASE_URL": url, "STREETSENSE_DATABASE_TIMESCALE": mode})
    return subprocess.run(
        [sys.executable, "-m", "streetsense.cli", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_installed_but_not_preloaded_reads_as_such(unloaded_database: str) -> None:
    with psycopg.connect(unloaded_database) as conn:
        found = read_facts(conn)
    assert (found.installed, found.available, found.loaded) == (None, VERSION, False)
    assert found.preload in ("pg_stat_statements", "")
    assert found.schema is None


def test_auto_uses_plain_postgresql_and_says_why(unloaded_database: str) -> None:
    migrated = streetsense(unloaded_database, "auto", "db", "migrate")
    assert migrated.returncode == 0, migrated.stderr
    warning = next(line for line in migrated.stderr.splitlines() if "storage backend" in line)
    assert "WARNING" in warning
    assert "storage backend: PostgreSQL" in warning
    assert f"TimescaleDB {VERSION} is installed on the server but not preloaded" in warning
    assert "shared_preload_libraries = '" in warning
    with psycopg.connect(unloaded_database) as conn:
        extension = "SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'"
        assert conn.execute(extension).fetchone() == (0,)
        assert read_facts(conn).schema == POSTGRESQL
        assert conn.execute("SELECT to_regclass('flow_5m')").fetchone() == ("flow_5m",)
    status = streetsense(unloaded_database, "auto", "db", "status")
    assert "PostgreSQL (the schema was created on plain PostgreSQL;" in status.stdout
    assert "not preloaded" in status.stdout
    doctor = streetsense(unloaded_database, "auto", "doctor")
    assert "[warn] TimescaleDB: plain PostgreSQL is used" in doctor.stdout


def test_on_refuses_in_one_line_naming_the_preload_and_the_restart(
    unloaded_database: str,
) -> None:
    migrated = streetsense(unloaded_database, "on", "db", "migrate")
    assert migrated.returncode == 2
    assert len(migrated.stderr.strip().splitlines()) == 1, migrated.stderr
    assert "shared_preload_libraries" in migrated.stderr
    assert "restart PostgreSQL" in migrated.stderr
    with psycopg.connect(unloaded_database) as conn:
        assert conn.execute("SELECT to_regclass('schema_migrations')").fetchone() == (None,)
    doctor = streetsense(unloaded_database, "on", "doctor")
    assert "[FAIL] TimescaleDB: database.timescale = 'on'" in doctor.stdout
    assert "not preloaded" in doctor.stdout
