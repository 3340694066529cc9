"""/schema/openapi.json documents every endpoint of API.md, its answers and the problem shape."""

from __future__ import annotations

from typing import Any

import pytest

from tests.client import Api

ENDPOINTS = [
    ("get", "/health"),
    ("get", "/ready"),
    ("post", "/v1/communities"),
    ("get", "/v1/communities"),
    ("get", "/v1/communities/{slug}"),
    ("put", "/v1/communities/{slug}/policy"),
    ("patch", "/v1/communities/{slug}/policy"),
    ("post", "/v1/communities/{slug}/members"),
    ("get", "/v1/communities/{slug}/members"),
    ("get", "/v1/members/{member_id}"),
    ("post", "/v1/members/{member_id}/tokens"),
    ("get", "/v1/me"),
    ("get", "/v1/accounts/{account_id}"),
    ("get", "/v1/accounts/{account_id}/entries"),
    ("get", "/v1/accounts/{account_id}/balance"),
    ("post", "/v1/credits"),
    ("post", "/v1/redemptions"),
    ("post", "/v1/transfers"),
    ("post", "/v1/pool-grants"),
    ("post", "/v1/transactions/{transaction_id}/reversal"),
    ("get", "/v1/transactions/{transaction_id}"),
    ("get", "/v1/communities/{slug}/transactions"),
    ("post", "/v1/holds"),
    ("post", "/v1/holds/{hold_id}/capture"),
    ("post", "/v1/holds/{hold_id}/release"),
    ("get", "/v1/holds/{hold_id}"),
    ("get", "/v1/communities/{slug}/holds"),
    ("get", "/v1/members/{member_id}/holds"),
    ("get", "/v1/audit-events"),
]

HOUR_MOVING = [
    "/v1/credits",
    "/v1/redemptions",
    "/v1/transfers",
    "/v1/pool-grants",
    "/v1/transactions/{transaction_id}/reversal",
    "/v1/holds",
    "/v1/holds/{hold_id}/capture",
    "/v1/holds/{hold_id}/release",
]


@pytest.fixture
async def schema(api: Api) -> dict[str, Any]:
    response = await api.get("/schema/openapi.json", None)
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        node = schema["components"]["schemas"][name]
    return node


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
async def test_every_endpoint_is_documented(schema: dict[str, Any], method: str, path: str) -> None:
    operation = schema["paths"][path][method]
    responses = operation["responses"]
    success = [code for code in responses if code.startswith("2")]
    assert success, f"{method} {path} documents no success answer"
    if path not in ("/health",):
        assert "503" in responses
    if path.startswith("/v1/"):
        for status in ("400", "401"):
            problem = responses[status]["content"]["application/problem+json"]["schema"]
            assert "code" in _resolve(schema, problem)["properties"]


@pytest.mark.parametrize("path", HOUR_MOVING)
async def test_writes_document_idempotency_key(schema: dict[str, Any], path: str) -> None:
    parameters = schema["paths"][path]["post"].get("parameters", [])
    names = {(p["in"], p["name"].lower()) for p in parameters}
    assert ("header", "idempotency-key") in names
    for status in ("409", "422"):
        assert status in schema["paths"][path]["post"]["responses"]


async def test_problem_schema_has_the_rfc_9457_members(schema: dict[str, Any]) -> None:
    problem = schema["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "detail", "code"} <= set(problem["required"])
    assert "errors" in problem["properties"]


async def test_bearer_security_is_declared(schema: dict[str, Any]) -> None:
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
