"""The operators' alerting: our Prometheus rules and Alertmanager routing, checked and run with
Debian's real `prometheus` and `prometheus-alertmanager`, started privately on free ports."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from harness.services import free_port, wait_port

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "streetsense-rules.yml"
ROUTES = DEPLOY / "alertmanager" / "alertmanager.example.yml"
PROMETHEUS, PROMTOOL = "prometheus", "promtool"
ALERTMANAGER, AMTOOL = "prometheus-alertmanager", "amtool"


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run scripts/setup --tests (apt-get install "
                    "prometheus prometheus-alertmanager)")  # fmt: skip
    return path


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False, cwd=cwd)


def test_rules_are_valid_and_their_unit_tests_pass() -> None:
    checked = run(tool(PROMTOOL), "check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = run(tool(PROMTOOL), "test", "rules", "streetsense-rules.test.yml", cwd=RULES.parent)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (["severity=critical", "team=platform"], "platform-pager,platform-mail"),
        (["severity=warning", "team=platform"], "platform-mail"),
        (["severity=warning", "team=field"], "field-mail"),
        (["alertname=Watchdog", "severity=none", "team=platform"], "deadmans-switch"),
    ],
)
def test_alertmanager_sample_routes_each_alert_to_its_people(
    labels: list[str], receivers: str
) -> None:
    checked = run(tool(AMTOOL), "check-config", str(ROUTES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    routed = run(tool(AMTOOL), "config", "routes", "test", f"--config.file={ROUTES}", *labels)
    assert routed.stdout.strip() == receivers, routed.stderr


class Hooks:
    """A webhook receiver for Alertmanager's notifications."""

    def __init__(self) -> None:
        self.port = free_port()
        self.got: list[tuple[str, dict[str, Any]]] = []
        self.arrived = threading.Condition()
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with hooks.arrived:
                    hooks.got.append((self.path, body))
                    hooks.arrived.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                del format, args

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, path: str, deadline_s: float) -> dict[str, Any]:
        end = time.monotonic() + deadline_s
        with self.arrived:
            while True:
                found = [body for p, body in self.got if p == path]
                if found:
                    return found[0]
                left = end - time.monotonic()
                assert left > 0, f"nothing arrived at {path}; got {[p for p, _ in self.got]}"
                self.arrived.wait(left)


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[tuple[int, Hooks, Gauge]]:
    """Start a scrape target, Alertmanager (the sample's routes, our receiver) and Prometheus
    (our rules); yield Prometheus's port, the receiver and the lag gauge."""
    hooks = Hooks()
    registry = CollectorRegistry()
    lag = Gauge("streetsense_ingest_lag_seconds", "lag", registry=registry)
    target = free_port()
    server, _ = start_http_server(target, addr="127.0.0.1", registry=registry)
    am_port, prom_port = free_port(), free_port()
    routes = ROUTES.read_text().replace("127.0.0.1:9095", f"127.0.0.1:{hooks.port}")
    (tmp_path / "alertmanager.yml").write_text(routes)
    (tmp_path / "streetsense-rules.yml").write_text(RULES.read_text())
    (tmp_path / "prometheus.yml").write_text(f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: [streetsense-rules.yml]
alerting:
  alertmanagers: [{{static_configs: [{{targets: ["127.0.0.1:{am_port}"]}}]}}]
scrape_configs:
  - job_name: streetsense-ingest
    static_configs: [{{targets: ["127.0.0.1:{target}"]}}]
""")
    processes = [
        subprocess.Popen([tool(ALERTMANAGER), f"--config.file={tmp_path / 'alertmanager.yml'}",
                          f"--storage.path={tmp_path / 'am'}",
                          f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address="],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen([tool(PROMETHEUS), f"--config.file={tmp_path / 'prometheus.yml'}",
                          f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                          f"--web.listen-address=127.0.0.1:{prom_port}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]  # fmt: skip
    try:
        wait_port("127.0.0.1", am_port, timeout=30)
        wait_port("127.0.0.1", prom_port, timeout=30)
        yield prom_port, hooks, lag
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)
        for http in (server, hooks.server):
            http.shutdown()
            http.server_close()


def _alerts(port: int) -> dict[str, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/alerts", timeout=5) as r:
        data = json.loads(r.read())
    return {a["labels"]["alertname"]: a["state"] for a in data["data"]["alerts"]}


def test_real_prometheus_evaluates_our_rules_and_alertmanager_delivers(
    pipeline: tuple[int, Hooks, Gauge],
) -> None:
    port, hooks, lag = pipeline
    lag.set(600)  # ten minutes behind
    watchdog = hooks.wait_for("/deadmans-switch", deadline_s=90)
    assert watchdog["alerts"][0]["labels"]["alertname"] == "Watchdog"
    assert watchdog["receiver"] == "deadmans-switch"
    deadline = time.monotonic() + 60
    while _alerts(port).get("StreetsenseIngestLagging") != "pending":
        assert time.monotonic() < deadline, _alerts(port)
        with hooks.arrived:  # wait on the receiver's condition as a clock: no busy loop
            hooks.arrived.wait(1.0)
    assert "StreetsenseIngestDown" not in _alerts(port)  # the target is up
