"""Fixtures the security tests share with the rooms they attack."""

from tests.feeds.conftest import start_server  # noqa: F401  (a running feeds server)
