"""The demo's ports: the same ones every run when they are free, another one said out loud."""

from __future__ import annotations

import errno
import logging
import socket
from typing import Final

from streetsense.errors import ConfigError

log = logging.getLogger(__name__)
DASHBOARD: Final = 8501  # Streamlit's own default
FEEDS: Final = 8000
HOST: Final = "127.0.0.1"


def free_port(host: str = HOST) -> int:
    """Return a TCP port on host that is free right now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def is_free(port: int, host: str = HOST) -> bool:
    """Tell whether a TCP port on host can be bound now, as a server binds it.

    SO_REUSEADDR, as uvicorn and Streamlit set it: a port whose last connections are in
    TIME_WAIT (the previous run of the demo) is free for them, so it is free here too.
    """
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def choose(service: str, given: int | None, default: int, option: str) -> tuple[int, str]:
    """Return the port a demo service listens on, and what to tell the user about it.

    A port given with `option` must be free: otherwise one line names it and the option. The
    default is taken when free; when not, a free port is, and the note says so.

    Raises:
        ConfigError: the port given is taken (or not a port).
    """
    if given is not None:
        if not 0 < given < 65_536:
            raise ConfigError(f"{option} {given}: give a TCP port from 1 to 65535")
        if not is_free(given):
            raise ConfigError(
                f"port {given} ({service}) is taken: stop what listens there, or give "
                f"{option} another port"
            )
        return given, ""
    if is_free(default):
        return default, ""
    fallback = free_port()
    return fallback, (
        f"port {default} is taken, so the {service} listens on {fallback} "
        f"(choose one with {option})"
    )
