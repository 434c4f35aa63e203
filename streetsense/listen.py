"""One clear error for a port a service cannot listen on, naming the setting that chose it."""

from __future__ import annotations

import errno

from streetsense.config import ENV_PREFIX
from streetsense.errors import ConfigError


def listen_error(
    setting: str, host: str, port: int, exc: OSError, *, option: str = "", optional: bool = True
) -> ConfigError:
    """Return the error for a failed bind of `setting` (e.g. 'ingest.metrics_port') to a port.

    The message says why in one line, and how to pick another port (by the setting, its
    variable or the command-line `option`) or turn an `optional` listener off (our metrics
    ports take 0 for "off").
    """
    env = ENV_PREFIX + setting.replace(".", "_").upper()
    if exc.errno == errno.EADDRINUSE:
        why = "another process is listening there"
    elif exc.errno == errno.EACCES:
        why = "this user may not use ports below 1024"
    else:
        why = exc.strerror or str(exc)
    ways = f"{env} or {option}" if option else env
    off = ", or 0 to turn it off" if optional else ""
    return ConfigError(
        f"cannot listen on {host}:{port} for {setting}: {why}; set {setting} (or {ways}) "
        f"to a free port{off}"
    )
