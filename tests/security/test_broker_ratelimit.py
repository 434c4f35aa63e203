"""Password guessing: new connections per address are limited before TLS (nftables sample).

Mosquitto 2.0 answers every login attempt (556 guesses a second in the attack). The shipped
rules are loaded in a private network namespace (`unshare -n`, nothing of the machine's
network is touched) and 100 simultaneous connections from one address are tried.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.services import REPO

RULES = REPO / "deploy" / "mosquitto" / "nftables-ratelimit.conf"
PROBE = Path(__file__).with_name("ratelimit_probe.py")


def _private_network() -> bool:
    if not (shutil.which("nft") and shutil.which("unshare") and shutil.which("ip")):
        return False
    tried = subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False)
    return tried.returncode == 0


@pytest.mark.skipif(not _private_network(), reason="needs nft, ip and unshare -n (root)")
def test_one_address_gets_its_burst_of_connections_and_no_more() -> None:
    result = subprocess.run(
        ["unshare", "-n", sys.executable, str(PROBE), str(RULES)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    counts = json.loads(result.stdout)
    assert counts["without"] == 100
    # the burst (30) and what 10 a second add while the probe runs (well under a second)
    assert 30 <= counts["with"] <= 40
