"""Property-based: requests generated from our OpenAPI document never get a 5xx."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from feeds.app import create_app
from streetsense.config import Settings
from tests.feeds.conftest import Server

# The document does not depend on the database, so it is read from the app itself; the
# live stream never ends by itself, so it cannot be called like the others.
schema = schemathesis.openapi.from_dict(create_app(Settings()).openapi()).exclude(
    path="/v1/parking/stream"
)


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_server_errors(case: schemathesis.Case, feeds: Server) -> None:  # type: ignore[type-arg]
    response = case.call(base_url=feeds.url)
    assert response.status_code < 500, (case.path, case.query, response.text[:300])
    if response.status_code >= 400:
        assert response.headers["content-type"] == ["application/problem+json"]
    # Every answer has a documented status, and JSON bodies match their declared schema.
    # (Acceptance of schema-valid input is not checked: a bbox with swapped corners fits
    # the string type yet is refused, by design.)
    case.validate_response(
        response,
        checks=[
            checks.not_a_server_error,
            checks.status_code_conformance,
            checks.content_type_conformance,
            checks.response_schema_conformance,
        ],
    )
