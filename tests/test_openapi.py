"""`GET /openapi.json` documents every API (OpenAPI 3.1, auth schemes, errors), and a
bounded, deterministic schemathesis run checks the live bridge against it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema

from tests import agent_scenario as scenario
from tests.conftest import RunningBridge

EXAMPLES = 10  # per operation and mode: bounded, and derandomized (the same cases every run)
CHECKS = [
    schemathesis.checks.not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
OPERATIONS = {
    ("get", "/api/v1/sessions"),
    ("get", "/api/v1/sessions/{session_id}"),
    ("get", "/api/public/sessions"),
    ("get", "/api/public/sessions/{sessionId}"),
    ("get", "/api/projects/{projectId}/sessions/export"),
    ("get", "/api/projects/{projectId}/sessions/generations"),
    ("get", "/api/projects/{projectId}/sessions/{sessionId}/traces"),
    ("get", "/api/projects/{projectId}/sessions/{sessionId}/traces/{spanId}/children"),
    ("get", "/api/projects/{projectId}/sessions/{sessionId}/metrics"),
    ("get", "/api/projects/{projectId}/sessions/{sessionId}/analysis"),
    ("post", "/v2/projects/{project_id}/sessions/search"),
    ("get", "/api/projects/{projectId}/sessions/{sessionId}/spans"),
    ("get", "/api/projects/{projectId}/usage"),
    ("get", "/api/v1/projects"),
}


@pytest.fixture(scope="module")
def documented(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningBridge]:
    with scenario.populated_bridge(request, tmp_path_factory.mktemp("openapi"), "sqlite") as bridge:
        yield bridge


def test_document(documented: RunningBridge) -> None:
    doc: dict[str, Any] = documented.client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    operations = {(m, p) for p, item in doc["paths"].items() for m in item}
    assert operations >= OPERATIONS
    assert set(doc["components"]["securitySchemes"]) == {"basicAuth", "bearerAuth", "galileoApiKey"}
    assert doc["components"]["securitySchemes"]["basicAuth"] == {
        "type": "http",
        "scheme": "basic",
        "description": "public_key:secret_key",
    }
    for method, path in OPERATIONS:
        operation = doc["paths"][path][method]
        assert "422" not in operation["responses"]
        assert {"200", "400", "401"} <= set(operation["responses"]), (method, path)
        assert operation["security"], (method, path)
        for parameter in operation.get("parameters", []):
            assert parameter.get("description"), (method, path, parameter["name"])
    assert {"basicAuth": []} in doc["paths"]["/api/public/sessions"]["get"]["security"]
    search_security = doc["paths"]["/v2/projects/{project_id}/sessions/search"]["post"]["security"]
    assert {"galileoApiKey": []} in search_security and {"bearerAuth": []} in search_security


@pytest.fixture(scope="module")
def api_schema(documented: RunningBridge) -> OpenApiSchema:
    schema = schemathesis.openapi.from_url(f"{documented.http_url}/openapi.json")
    schema.config.update(base_url=documented.http_url)
    return schema


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
@pytest.mark.parametrize(("method", "path"), sorted(OPERATIONS))
def test_api_conforms_to_its_document(
    api_schema: OpenApiSchema, method: str, path: str, mode: GenerationMode
) -> None:
    """Generated requests (valid, then invalid ones) get answers the document allows:
    no 5xx, documented status codes and content types, bodies matching the schemas."""
    operation = api_schema[path][method.upper()]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def conforms(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(checks=CHECKS)

    conforms()
