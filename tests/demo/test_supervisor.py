"""The demo supervisor starts children, reports the dead ones and stops them all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from streetsense.demo.supervisor import ChildFailedError, ChildSpec, Supervisor
from streetsense.lifecycle import StopSignal


def _python(name: str, code: str) -> ChildSpec:
    return ChildSpec(name, [sys.executable, "-c", textwrap.dedent(code)])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); it is gone for our purposes
    state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    return state != "Z"


def test_stop_all_terminates_and_kills_a_child_that_ignores_sigterm(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path, dict(os.environ), StopSignal())
    polite = supervisor.start(_python("polite", "import time; time.sleep(600)"))
    stubborn = supervisor.start(
        _python(
            "stubborn",
            """
            import signal, time
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            print("ready", flush=True)
            time.sleep(600)
            """,
        )
    )
    while "ready" not in stubborn.log_path.read_text():
        time.sleep(0.05)
    supervisor.stop_all(grace_s=1)
    assert polite.process.returncode == -signal.SIGTERM
    assert stubborn.process.returncode == -signal.SIGKILL


def test_a_dead_child_is_reported_with_its_last_log_lines(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path, dict(os.environ), StopSignal())
    child = supervisor.start(
        _python("ingest", "import sys; print('cannot reach the broker'); sys.exit(3)")
    )
    child.process.wait(30)
    dead = supervisor.dead()
    assert dead == [child]
    message = dead[0].describe_exit()
    assert "ingest exited (3)" in message
    assert "cannot reach the broker" in message
    assert supervisor.dead() == []


def test_a_failing_one_shot_step_raises_with_its_output(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path, dict(os.environ), StopSignal())
    supervisor.run(_python("ok", "print('fine')"))
    with pytest.raises(ChildFailedError, match="schema is newer"):
        supervisor.run(_python("migrate", "import sys; print('schema is newer'); sys.exit(2)"))
    assert "fine" in (tmp_path / "ok.log").read_text()


SUPERVISED = """
import os, sys, time
from pathlib import Path
from streetsense.demo.supervisor import ChildSpec, Supervisor
from streetsense.lifecycle import StopSignal
stop = StopSignal().install()
supervisor = Supervisor(Path(sys.argv[1]), dict(os.environ), stop)
for name in ("a", "b"):
    sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
    child = supervisor.start(ChildSpec(name, sleeper))
    print(child.process.pid, flush=True)
print("running", flush=True)
stop.wait(600)
supervisor.stop_all()
print("stopped", flush=True)
"""


def test_sigint_to_the_supervisor_stops_every_child(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", SUPERVISED, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert process.stdout is not None
    pids = [int(process.stdout.readline()) for _ in range(2)]
    assert process.stdout.readline().strip() == "running"
    assert all(_alive(pid) for pid in pids)
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    assert "stopped" in out
    assert not any(_alive(pid) for pid in pids)
