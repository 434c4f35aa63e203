"""A supervised child stops when its supervisor is killed outright (SIGKILL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from streetsense.lifecycle import PARENT_ENV

# A supervisor that starts one child the way `streetsense demo` does, prints its pid, waits.
SUPERVISOR = """
import os, subprocess, sys, time
child = subprocess.Popen(
    [sys.executable, "-c", sys.argv[1]],
    env={**os.environ, sys.argv[2]: str(os.getpid())},
    start_new_session=True,
)
print(child.pid, flush=True)
time.sleep(120)
"""
CHILD = (
    "from streetsense.lifecycle import follow_parent; follow_parent(); import time; time.sleep(120)"
)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too (its parent, pid 1 here, may not have reaped it yet).
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
@pytest.mark.parametrize("asks", [True, False])
def test_a_child_that_asked_stops_with_its_killed_supervisor(asks: bool) -> None:
    supervisor = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, CHILD, PARENT_ENV if asks else "UNRELATED_VAR"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert supervisor.stdout is not None
    child = int(supervisor.stdout.readline())
    time.sleep(1.0)  # the child is running and has asked
    supervisor.send_signal(signal.SIGKILL)
    supervisor.wait(10)
    supervisor.stdout.close()
    deadline = time.monotonic() + 10
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        assert alive(child) is not asks  # without asking, it runs on as an orphan (control)
    finally:
        if alive(child):
            os.kill(child, signal.SIGKILL)
