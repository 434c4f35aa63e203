"""HTTP behaviour: validators and 304, gzip, CORS, security headers, rate limits, health."""

from __future__ import annotations

from collections.abc import Callable

import psycopg

from streetsense.config import Settings
from tests.feeds.conftest import Server, feeds_settings

READS = (
    "/v1/parking/lots",
    "/v1/parking/lots/market",
    "/v1/parking/lots/market/forecast",
    "/v1/parking/lots/market/history",
    "/v1/parking/lots?format=csv",
    "/v1/traffic/segments",
    "/v1/traffic/segments/ring-eb",
    "/ltaodataservice/CarParkAvailabilityv2",
)


def test_every_read_has_validators_and_revalidates_to_304(feeds: Server) -> None:
    with feeds.client() as client:
        for path in READS:
            first = client.get(path)
            assert first.status_code == 200, path
            assert first.headers["etag"], path
            assert "max-age=" in first.headers["cache-control"], path
            assert first.headers["last-modified"].endswith("GMT"), path
            again = client.get(path, headers={"If-None-Match": first.headers["etag"]})
            assert again.status_code == 304, path
            assert again.content == b""
            assert again.headers["etag"] == first.headers["etag"]


def test_if_modified_since_and_changed_etag(feeds: Server) -> None:
    with feeds.client() as client:
        first = client.get("/v1/parking/lots")
        since = client.get(
            "/v1/parking/lots", headers={"If-Modified-Since": first.headers["last-modified"]}
        )
        other = client.get("/v1/parking/lots", headers={"If-None-Match": 'W/"something-else"'})
    assert since.status_code == 304
    assert other.status_code == 200


def test_gzip_when_accepted_only(feeds: Server) -> None:
    with feeds.client() as client:
        packed = client.get("/v1/parking/lots", headers={"Accept-Encoding": "gzip"})
        plain = client.get("/v1/parking/lots", headers={"Accept-Encoding": "identity"})
    assert packed.headers["content-encoding"] == "gzip"
    assert "content-encoding" not in plain.headers
    assert packed.json() == plain.json()  # httpx decodes gzip
    assert int(packed.headers["content-length"]) < len(plain.content)


def test_cors_for_browser_apps(
    city: psycopg.Connection, settings: Settings, start_server: Callable[..., Server]
) -> None:
    server = start_server(feeds_settings(settings, cors_origins="https://app.example"))
    with server.client() as client:
        simple = client.get("/v1/parking/lots", headers={"Origin": "https://app.example"})
        preflight = client.options(
            "/v1/parking/lots",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "If-None-Match",
            },
        )
        foreign = client.get("/v1/parking/lots", headers={"Origin": "https://evil.example"})
    assert simple.headers["access-control-allow-origin"] == "https://app.example"
    assert "ETag" in simple.headers["access-control-expose-headers"]
    assert preflight.status_code == 200
    assert "GET" in preflight.headers["access-control-allow-methods"]
    assert "access-control-allow-origin" not in foreign.headers


def test_security_headers_on_data_and_errors(feeds: Server) -> None:
    with feeds.client() as client:
        for path in ("/v1/parking/lots", "/v1/parking/lots/nope", "/nowhere"):
            headers = client.get(path).headers
            assert headers["x-content-type-options"] == "nosniff", path
            assert headers["x-frame-options"] == "DENY", path
            assert "default-src 'none'" in headers["content-security-policy"], path


def test_rate_limit_answers_429_with_retry_after(
    city: psycopg.Connection, settings: Settings, start_server: Callable[..., Server]
) -> None:
    server = start_server(feeds_settings(settings, rate_per_minute=60))
    with server.client() as client:
        statuses = [client.get("/v1/parking/lots").status_code for _ in range(15)]
        refused = client.get("/v1/parking/lots")
        health = client.get("/health")
    assert statuses[:10] == [200] * 10  # the burst
    assert 429 in statuses
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["content-type"] == "application/problem+json"
    assert "60 requests per minute" in refused.json()["detail"]
    assert health.status_code == 200  # monitoring is never throttled


def test_head_gives_the_headers_of_get(feeds: Server) -> None:
    with feeds.client() as client:
        full = client.get("/v1/parking/lots")
        head = client.head("/v1/parking/lots")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["etag"] == full.headers["etag"]
    assert head.headers["content-type"] == "application/json"


def test_unknown_path_and_method_get_problems(feeds: Server) -> None:
    with feeds.client() as client:
        missing = client.get("/v2/whatever")
        posted = client.post("/v1/parking/lots", json={})
    assert missing.status_code == 404
    assert missing.json()["type"] == "urn:streetsense:problem:http-404"
    assert posted.status_code == 405
    assert "read-only" in posted.json()["detail"]


def test_health_and_openapi(feeds: Server) -> None:
    with feeds.client() as client:
        health = client.get("/health").json()
        spec = client.get("/openapi.json").json()
        docs = client.get("/docs")
    assert health == {"status": "ok"}  # the counts are on the metrics port
    assert feeds.metric("streetsense_feeds_lots") == 3
    assert "/v1/parking/lots/{lot_id}/history" in spec["paths"]
    assert "/ltaodataservice/CarParkAvailabilityv2" in spec["paths"]
    assert "422" not in spec["paths"]["/v1/parking/lots"]["get"]["responses"]
    assert docs.status_code == 200
    assert "script-src 'self'" in docs.headers["content-security-policy"]  # served here
