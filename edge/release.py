"""Which release of the agent this process runs."""

from __future__ import annotations

import pkgutil

from streetsense import __version__ as PACKAGE_VERSION  # noqa: N812

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
