"""Fixtures the security tests share with the rooms they attack (each room's real services)."""

from __future__ import annotations

# The open feeds: a test city in a fresh database and a real uvicorn server over it.
from tests.feeds.conftest import busy_city, busy_feeds, city, feeds, start_server  # noqa: F401

# The fleet: a broker with dynamic security, the fleet service, a batch, ingest on that broker.
from tests.fleet.conftest import (  # noqa: F401
    batch_secret,
    dynsec,
    fleet,
    fleet_city,
    fleet_settings,
    fleet_topics,
    ingest,
    keys,
)

# Database roles: a login user in a service's group role, on this test's database.
from tests.test_roles import login_as  # noqa: F401
