"""Headless Chromium over the DevTools protocol: load a page, read its text, screenshot it."""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from websockets.sync.client import ClientConnection, connect

from harness.services import free_port, wait_port

FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)  # fmt: skip
# Streamlit shows these while a script runs or after it failed.
_STATE_JS = """JSON.stringify({
  text: document.body ? document.body.innerText : "",
  running: !!document.querySelector('[data-testid="stStatusWidget"]')
           || !!document.querySelector('[data-testid="stSkeleton"]'),
  errors: Array.from(document.querySelectorAll(
      '[data-testid="stException"], [data-testid="stAlertContentError"]'))
      .map(e => e.innerText)
})"""


def chromium_binary() -> str | None:
    """Return the Chromium executable, or None when it is not installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """One headless Chromium with one tab, closed on exit."""

    def __init__(self, profile: Path, width: int = 1400, height: int = 1600) -> None:
        self.profile = profile
        self.size = (width, height)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.tab: ClientConnection | None = None
        self._ids = itertools.count(1)

    def __enter__(self) -> Browser:
        binary = chromium_binary()
        if binary is None:
            raise FileNotFoundError("chromium is not installed (apt-get install chromium)")
        self.process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={self.profile}",
             f"--remote-debugging-port={self.port}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_port("127.0.0.1", self.port, timeout=30)
        self.tab = connect(self._tab_socket(), max_size=None, open_timeout=30)
        width, height = self.size
        self.call("Emulation.setDeviceMetricsOverride",
                  width=width, height=height, deviceScaleFactor=1, mobile=False)  # fmt: skip
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.tab is not None:
            self.tab.close()
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def _tab_socket(self) -> str:
        deadline = time.monotonic() + 30
        while True:
            address = f"http://127.0.0.1:{self.port}/json/list"
            with urllib.request.urlopen(address, timeout=5) as response:
                pages = [t for t in json.load(response) if t.get("type") == "page"]
            if pages or time.monotonic() > deadline:
                return str(pages[0]["webSocketDebuggerUrl"])
            time.sleep(0.2)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one DevTools command and return its result, skipping events."""
        assert self.tab is not None
        ident = next(self._ids)
        self.tab.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.tab.recv(timeout=60))
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))

    def open(self, url: str, expected: str, timeout: float = 60.0) -> dict[str, Any]:
        """Load url and wait until its text holds `expected` and Streamlit is idle."""
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + timeout
        state: dict[str, Any] = {}
        settled = 0
        while time.monotonic() < deadline:
            time.sleep(0.5)
            result = self.call("Runtime.evaluate", expression=_STATE_JS, returnByValue=True)
            state = json.loads(result["result"]["value"])
            ready = expected in state["text"] and not state["running"]
            # Charts draw a moment after the script finishes: wait for two idle polls.
            settled = settled + 1 if ready else 0
            if settled >= 3 or state["errors"]:
                return state
        return state

    def screenshot(self, path: Path) -> None:
        """Save what the tab shows as a PNG."""
        result = self.call("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(result["data"]))
