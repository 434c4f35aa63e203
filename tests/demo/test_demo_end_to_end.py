"""`streetsense demo` end to end: embedded defaults, then the machine's real services."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any
from xml.etree import ElementTree

import psycopg
import pytest
from psycopg import sql

from edge.config import load_config
from harness.services import free_port

REPO = Path(__file__).resolve().parents[2]
DEMO_ARGS = ("--no-browser", "--lots", "4", "--segments", "3")
HISTORY = ("--history", "3d")
# A real agent's first confirmed readings take a while: a lot's spots are confirmed
# parking.free_after_s (60 s) after the agent starts, a traffic counter sends its first whole
# minute up to two minutes after it started.
AGENTS_CONFIRMED_S = 240
pytestmark = pytest.mark.slow


class DemoRun:
    """`streetsense demo` as a user starts it, with its output collected as it comes."""

    def __init__(
        self, tmp_path: Path, data_dir: Path, extra_env: dict[str, str], *args: str
    ) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STREETSENSE_")}
        env |= {"PYTHONPATH": str(REPO), **extra_env}
        self.feeds_port = free_port()
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streetsense.cli", "demo", *args, "--feeds-port",
             str(self.feeds_port), "--data-dir", str(data_dir)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path,
        )  # fmt: skip
        assert self.process.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.process.stdout,))
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        """Everything the demo printed so far."""
        return "\n".join(self.lines)

    def get(self, path: str) -> Any:
        """GET a JSON document from the demo's feeds API."""
        url = f"http://127.0.0.1:{self.feeds_port}{path}"
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)

    def wait_running(self, timeout_s: float = 600) -> float:
        """Wait until the demo prints its URLs; return how long that took."""
        began = time.monotonic()
        while "streetsense demo is running" not in self.output:
            assert self.process.poll() is None, f"demo exited early:\n{self.output}"
            assert time.monotonic() - began < timeout_s, f"demo never came up:\n{self.output}"
            time.sleep(0.5)
        return time.monotonic() - began

    def stop(self, timeout_s: float = 90) -> int:
        """Stop the demo as Ctrl-C does; return its exit code."""
        self.process.send_signal(signal.SIGINT)
        return self.finish(timeout_s)

    def finish(self, timeout_s: float = 180) -> int:
        """Wait for the demo to end by itself (--duration); return its exit code."""
        code = self.process.wait(timeout_s)
        self._close()
        return code

    def _close(self) -> None:
        self._reader.join(10)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def kill(self) -> None:
        """Stop a demo a failed test left running."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)
        self._close()


def _lots(document: Any) -> list[dict[str, Any]]:
    return document["lots"] if isinstance(document, dict) else document


FAC = "{http://datex2.eu/schema/3/facilities}"
PRK = "{http://datex2.eu/schema/3/parking}"


def _live(lot: dict[str, Any]) -> bool:
    """A lot is live when fresh and, if open, has a free count and a forecast (a closed lot
    has neither: it is closed, not full)."""
    if lot["stale"] or lot["occupied"] is None:
        return False
    if lot["status"] == "closed":
        return lot["available"] is None and lot["forecast"]["available_15m"] is None
    return lot["available"] is not None and lot["forecast"]["available_15m"] is not None


def check_live_city(demo: DemoRun) -> None:
    """Through the feeds API: every lot live (not stale) with a forecast, segments flowing; the
    demo's operator closure of lot-003 shows."""
    demo.wait_running()
    deadline = time.monotonic() + 85
    lots: list[dict[str, Any]] = []
    while time.monotonic() < deadline and demo.process.poll() is None:
        lots = _lots(demo.get("/v1/parking/lots"))
        if lots and all(_live(lot) for lot in lots):
            break
        time.sleep(2)
    assert len(lots) == 4, demo.output
    assert all(_live(lot) for lot in lots), lots
    closed = {lot["id"]: lot["status_source"] for lot in lots if lot["status"] == "closed"}
    assert closed.get("lot-003") == "operator", lots
    # the same closure for National Access Points and ParkAPI apps
    sites = {
        s["original_uid"]: s for s in demo.get("/v1/parking/parkapi/v3/parking-sites")["items"]
    }
    assert sites["lot-003"]["realtime_opening_status"] == "CLOSED", sites["lot-003"]
    url = f"http://127.0.0.1:{demo.feeds_port}/v1/parking/datex2/status"
    with urllib.request.urlopen(url, timeout=5) as response:
        status = ElementTree.fromstring(response.read())
    opening = {
        element.find(f"{FAC}reference").get("id"): element.findtext(f"{FAC}openingStatus")  # type: ignore[union-attr]
        for element in status.iter(f"{PRK}parkingStatusInformation")
    }
    assert opening["lot-003"] == "closed" and len(opening) >= 4, opening
    segments = demo.get("/v1/traffic/segments")
    segments = segments["segments"] if isinstance(segments, dict) else segments
    assert any(segment["vehicle_count"] is not None for segment in segments), segments


def agent_states(data_dir: Path) -> list[dict[str, Any]]:
    """Return the state files of the demo's real edge agents."""
    return [json.loads(p.read_text()) for p in (data_dir / "devices" / "agents").glob("*.json")]


def wait_agents_confirmed(demo: DemoRun, data_dir: Path) -> None:
    """Wait until each real edge agent (2 lots, 1 segment by default) has readings that ingest
    confirmed (its ack through the broker), not just sent; on a timeout, say what each did."""
    assert "3 real edge agents" in demo.output, demo.output
    deadline = time.monotonic() + AGENTS_CONFIRMED_S
    states: list[dict[str, Any]] = []
    while time.monotonic() < deadline and demo.process.poll() is None:
        states = agent_states(data_dir)
        if len(states) == 3 and all(
            state["published"] > 0 and state["acked"] >= state["first_seq"] for state in states
        ):
            return
        time.sleep(1)
    logs = {name: (data_dir / "logs" / f"{name}.log").read_text(errors="replace")[-3000:]
            for name in ("agents", "ingest")}  # fmt: skip
    raise AssertionError(f"agents not all confirmed: {states}\n{logs}")


def check_field_agent(demo: DemoRun, data_dir: Path) -> None:
    """The banner says where the broker and the database are, and gives an agent config."""
    assert re.search(r"^broker +mqtt://", demo.output, re.M), demo.output
    assert re.search(r"^database +postgresql://", demo.output, re.M), demo.output
    config = data_dir / "edge-agent.toml"
    assert f"streetsense-edge run --config {config}" in demo.output
    agent = load_config(config, environ={})
    assert agent.device.id == "field-agent-1" and agent.device.confirm_key_file
    assert (data_dir / "running.json").is_file()


def live_readings(output: str) -> int:
    """Return the most live readings (written after the backfill) the summary reported."""
    counts = re.findall(r"live readings ([\d,]+)", output)
    return max((int(count.replace(",", "")) for count in counts), default=0)


def test_demo_on_embedded_defaults(tmp_path: Path, demo_dir: Path) -> None:
    demo = DemoRun(tmp_path, demo_dir, {}, *DEMO_ARGS, *HISTORY)
    try:
        check_live_city(demo)
        check_field_agent(demo, demo_dir)
        wait_agents_confirmed(demo, demo_dir)
        assert demo.stop() == 0, demo.output
    finally:
        demo.kill()
    assert live_readings(demo.output) > 0, demo.output
    assert "Data and logs are in" in demo.output
    assert "Traceback" not in demo.output
    assert not (demo_dir / "running.json").exists()
    # The next run reuses the data folder: no new city, no second backfill, but the hours
    # since the last run (two, as if it stopped then) are filled, so charts have no hole.
    state_file = demo_dir / "state.json"
    saved = json.loads(state_file.read_text())
    state_file.write_text(json.dumps({**saved, "live_until": time.time() - 7200}))
    again = DemoRun(tmp_path, demo_dir, {}, "--duration", "5", *DEMO_ARGS, *HISTORY)
    try:
        assert again.finish() == 0, again.output
    finally:
        again.kill()
    assert "demo PostgreSQL reused" in again.output
    assert "backfilling" not in again.output
    assert "filling the 2.0 hours since the demo last ran" in again.output, again.output
    [start] = re.findall(r"backfill: .* observed (\S+) to ", again.output)
    filled_from = datetime.fromisoformat(start).timestamp()
    assert time.time() - 3 * 3600 < filled_from < time.time() - 7200 + 300, start


@pytest.fixture
def own_database(admin_url: str) -> Iterator[str]:
    """A fresh, empty database of this test's own on the machine's PostgreSQL."""
    name = f"ss_demo_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield psycopg.conninfo.make_conninfo(admin_url, dbname=name)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def test_demo_on_real_mosquitto_and_postgresql(
    tmp_path: Path, demo_dir: Path, own_database: str, broker: str
) -> None:
    prefix = f"demo-{uuid.uuid4().hex[:8]}/streetsense/v1"
    env = {
        "STREETSENSE_DATABASE_URL": own_database,
        "STREETSENSE_MQTT_URL": broker,
        "STREETSENSE_MQTT_TOPIC_PREFIX": prefix,
        "STREETSENSE_MQTT_SHARED_GROUP": f"ingest-{uuid.uuid4().hex[:6]}",
    }
    demo = DemoRun(tmp_path, demo_dir, env, *DEMO_ARGS, *HISTORY)
    try:
        check_live_city(demo)
        wait_agents_confirmed(demo, demo_dir)
        assert demo.stop() == 0, demo.output
    finally:
        demo.kill()
    assert live_readings(demo.output) > 0, demo.output
    assert "demo MQTT broker" not in demo.output
    assert "demo PostgreSQL" not in demo.output
    with psycopg.connect(own_database) as conn:
        row = conn.execute("SELECT count(*) FROM readings").fetchone()
    assert row is not None and row[0] > 0


def _groups_alive(groups: set[int]) -> set[int]:
    """Return which of these process groups still have a live (non-zombie) member."""
    alive = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, group = fields[0], int(fields[2])
        if group in groups and state != "Z":
            alive.add(group)
    return alive


def test_ctrl_c_stops_every_child_and_says_where_the_data_are(
    tmp_path: Path, demo_dir: Path
) -> None:
    demo = DemoRun(tmp_path, demo_dir, {}, "--no-browser", "--lots", "2", "--segments", "2",
                   "--history", "1d")  # fmt: skip
    try:
        demo.wait_running()
        # each child leads its own process group (Streamlit's server runs inside one)
        groups = {int(pid) for pid in re.findall(r"started \w+ \(pid (\d+)\)", demo.output)}
        # ingest, analytics, alerts, feeds, dashboard, devices, agents
        assert len(groups) == 7, demo.output
        assert _groups_alive(groups) == groups
        demo.process.send_signal(signal.SIGINT)
        assert demo.finish(90) == 0, demo.output
    finally:
        demo.kill()
    assert _groups_alive(groups) == set()
    assert f"Data and logs are in {demo_dir}" in demo.output
    assert not (demo_dir / "pgdata" / "postmaster.pid").exists()


def test_a_child_that_dies_is_reported_with_its_last_lines(tmp_path: Path, demo_dir: Path) -> None:
    demo = DemoRun(tmp_path, demo_dir, {}, "--no-browser", "--lots", "2", "--segments", "2",
                   "--history", "1d")  # fmt: skip
    try:
        demo.wait_running()
        pids = dict(re.findall(r"started (\w+) \(pid (\d+)\)", demo.output))
        os.kill(int(pids["ingest"]), signal.SIGKILL)
        assert demo.finish(90) == 1, demo.output
    finally:
        demo.kill()
    assert "ingest exited (signal SIGKILL); last lines of" in demo.output
    assert "ingest.log" in demo.output
    assert _groups_alive({int(pid) for pid in pids.values()}) == set()
