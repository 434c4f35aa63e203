"""The API documentation pages load nothing from outside this server, and say so in their
Content-Security-Policy: no CDN to go blank offline or to run its scripts on our origin."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.dashboard.browser import Browser, chromium_binary
from tests.feeds.conftest import Server

# Records every policy violation the page meets, before any of its own scripts run.
WATCH_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation",
    (e) => window.__violations.push(e.violatedDirective + " " + e.blockedURI));
"""
STATE = """JSON.stringify({
  text: document.body ? document.body.innerText : "",
  violations: window.__violations || [],
  resources: performance.getEntriesByType("resource").map((e) => e.name),
})"""


def test_docs_pages_carry_a_policy_of_this_server_only(feeds: Server) -> None:
    with feeds.client() as client:
        for path in ("/docs", "/redoc"):
            page = client.get(path)
            policy = page.headers["content-security-policy"]
            assert "script-src 'self'" in policy and "default-src 'none'" in policy
            assert "https:" not in policy and "cdn" not in page.text
            assert "<script>" not in page.text  # every script is a file of this server
            for asset in ("swagger-ui-bundle.js", "redoc.standalone.js", "docs.js"):
                assert client.get(f"/docs/assets/{asset}").status_code == 200
        assert client.get("/docs/assets/..%2fapp.py").status_code == 404


def _wait_for(browser: Browser, url: str, expected: str) -> dict[str, list[str] | str]:
    browser.call("Page.navigate", url=url)
    deadline = time.monotonic() + 60
    state: dict[str, list[str] | str] = {}
    while time.monotonic() < deadline:
        result = browser.call("Runtime.evaluate", expression=STATE, returnByValue=True)
        state = json.loads(result["result"]["value"])
        if expected in state["text"]:
            return state
        time.sleep(0.25)
    raise AssertionError(f"{url} never showed {expected!r}: {str(state)[:500]}")


@pytest.mark.browser
@pytest.mark.skipif(chromium_binary() is None, reason="chromium is not installed")
def test_docs_render_offline_with_no_policy_violation(feeds: Server, tmp_path: Path) -> None:
    with Browser(tmp_path / "profile") as browser:
        browser.call("Page.enable")
        browser.call("Page.addScriptToEvaluateOnNewDocument", source=WATCH_VIOLATIONS)
        for path, expected in (("/docs", "/v1/parking/lots"), ("/redoc", "CarParkAvailabilityv2")):
            state = _wait_for(browser, feeds.url + path, expected)
            assert state["violations"] == [], path
            outside = [r for r in state["resources"] if not str(r).startswith(feeds.url)]
            assert outside == [], path
