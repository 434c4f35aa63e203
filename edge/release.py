"""Which release of the agent this process runs."""

from __future__ import annotations

import pkgutil
from typing import Final

from streetsense import __version__ as PACKAGE_VERSION  # noqa: N812

RESTART_FOR_UPDATE: Final = 75  # the agent's exit code asking the launcher for the trial
TRIAL_ENV: Final = "STREETSENSE_EDGE_TRIAL"  # set by the launcher: the version on trial
LAUNCHED_ENV: Final = "STREETSENSE_EDGE_LAUNCHED"  # set by the launcher for its child

# A release bundle's zipapp carries edge/_release.txt with its version; the package installed
# with pip (the factory release) has none.
_MARK = "_release.txt"


def running_version() -> str:
    """Return the release this process runs: a bundle's version, else the package's."""
    try:
        data = pkgutil.get_data("edge", _MARK)
    except (OSError, ValueError):
        data = None
    return data.decode().strip() if data else PACKAGE_VERSION
