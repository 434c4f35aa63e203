"""A 3-node NATS cluster of a test's own (MQTT on JetStream, every stream on 3 nodes)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.nats import HAVE_NATS, NATS_SERVER, NatsCluster


@pytest.fixture
def nats_cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    """Start three private NATS nodes on free ports in the test's folder; stop them after."""
    if not HAVE_NATS:
        pytest.fail(
            f"{NATS_SERVER} is missing: the cluster tests need Debian's nats-server "
            "(scripts/setup --tests installs it)"
        )
    cluster = NatsCluster(tmp_path / "nats")
    try:
        yield cluster.start()
    finally:
        cluster.stop()
