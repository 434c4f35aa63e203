"""One clear error for a port a service cannot listen on, naming the setting that chose it."""

from __future__ import annotations

import errno

from streetsense.config import ENV_PREFIX
from streetsense.errors import ConfigError


def listen_error(setting: str, host: str, port: int, exc: OSError) -> ConfigError:
    """Return the error for a failed bind of `setting` (e.g. 'ingest.metrics_port') to a port.

    The message says why in one line, and how to pick another port or turn the listener off
    (every port setting of ours takes 0 for "off").
    """
    env = ENV_PREFIX + setting.replace(".", "_").upper()
    if exc.errno == errno.EADDRINUSE:
        why = "another process is listening there"
    elif exc.errno == errno.EACCES:
        why = "this user may not use ports below 1024"
    else:
        why = exc.strerror or str(exc)
    return ConfigError(
        f"cannot listen on {host}:{port} for {setting}: {why}; set {setting} (or {env}) "
        "to a free port, or 0 to turn it off"
    )
