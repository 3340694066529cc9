"""/schema/openapi.json tells the whole truth: every endpoint of API.md, required headers with their
real shape, closed bodies, the codes of every problem response, reusable enums, links, examples
that are real errors. Any operation added later is held to the same rules by walking the document.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from tests.client import Api
from timebank.errors import CODES

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

# The writes of API.md's first version that need no Idempotency-Key (they do not move hours).
# Every other write, including every one added later, must require the key.
UNKEYED_WRITES = {
    ("post", "/v1/communities"),
    ("put", "/v1/communities/{slug}/policy"),
    ("post", "/v1/communities/{slug}/members"),
    ("post", "/v1/members/{member_id}/tokens"),
    # PATCH changes a policy as PUT replaces it: neither moves hours, and both are naturally idempotent.
    ("patch", "/v1/communities/{slug}/policy"),
    # PUT replaces a service type's fields: it moves no hours and is naturally idempotent.
    ("put", "/v1/communities/{slug}/service-types/{code}"),
}
PUBLIC = {("get", "/health"), ("get", "/ready"), ("get", "/v1/log/checkpoint"), ("get", "/v1/log/consistency")}
WRITE_METHODS = {"post", "put", "patch", "delete"}


@pytest.fixture
async def schema(api: Api) -> dict[str, Any]:
    response = await api.get("/schema/openapi.json", None)
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def operations(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in {"get", "put", "post", "patch", "delete"}:
                yield method, path, operation


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def nodes(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from nodes(value)


def problem_codes(schema: dict[str, Any], response: dict[str, Any]) -> list[str]:
    problem = response["content"]["application/problem+json"]["schema"]
    assert problem["allOf"] == [{"$ref": "#/components/schemas/Problem"}], problem
    codes: list[str] = problem["properties"]["code"]["enum"]
    return codes


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
async def test_every_endpoint_of_the_contract_is_documented(schema: dict[str, Any], method: str, path: str) -> None:
    operation = schema["paths"][path][method]
    assert any(status.startswith("2") for status in operation["responses"])


async def test_operation_ids_are_short_stable_and_unique(schema: dict[str, Any]) -> None:
    ids = [operation["operationId"] for _, _, operation in operations(schema)]
    assert len(ids) == len(set(ids))
    for operation_id in ids:
        assert re.fullmatch(r"[a-z][a-z0-9_]{2,39}", operation_id), operation_id
    assert schema["paths"]["/v1/credits"]["post"]["operationId"] == "post_credit"


async def test_every_write_requires_its_idempotency_key(schema: dict[str, Any]) -> None:
    for method, path, operation in operations(schema):
        if method not in WRITE_METHODS or (method, path) in UNKEYED_WRITES:
            continue
        keys = [p for p in operation.get("parameters", []) if p["in"] == "header" and p["name"] == "Idempotency-Key"]
        assert len(keys) == 1, f"{method} {path} does not declare Idempotency-Key"
        (key,) = keys
        assert key["required"] is True, (method, path)
        assert key["schema"] == {
            "type": "string",
            "minLength": 1,
            "maxLength": 200,
            "pattern": "^[\\x20-\\x7e]+$",
            "description": key["schema"]["description"],
        }
        responses = operation["responses"]
        assert set(problem_codes(schema, responses["400"])) >= {"invalid_request", "idempotency_key_required"}
        assert "idempotency_key_reused" in problem_codes(schema, responses["409"])
        success = next(r for s, r in responses.items() if s.startswith("2"))
        assert "Idempotent-Replayed" in success["headers"], (method, path)


async def test_request_bodies_are_closed(schema: dict[str, Any]) -> None:
    """The server refuses unknown fields, so every object a body may contain says so."""
    for method, path, operation in operations(schema):
        body = operation.get("requestBody")
        if body is None:
            continue
        pending = [body["content"]["application/json"]["schema"]]
        seen: set[str] = set()
        while pending:
            node = pending.pop()
            if "$ref" in node:
                name = node["$ref"].rsplit("/", 1)[-1]
                if name in seen:
                    continue
                seen.add(name)
                node = resolve(schema, node)
            if node.get("type") == "object":
                assert node.get("additionalProperties") is False, f"{method} {path}: {node.get('title')} is open"
            for key in ("properties",):
                pending.extend(node.get(key, {}).values())
            for key in ("oneOf", "anyOf", "allOf"):
                pending.extend(node.get(key, []))
            if "items" in node:
                pending.append(node["items"])


async def test_every_problem_response_lists_its_codes_from_the_registry(schema: dict[str, Any]) -> None:
    for method, path, operation in operations(schema):
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            codes = problem_codes(schema, response)
            assert codes, (method, path, status)
            for code in codes:
                assert code in CODES, code
                assert CODES[code].status == int(status), (method, path, status, code)
            examples = response["content"]["application/problem+json"]["examples"]
            assert sorted(examples) == sorted(codes), (method, path, status)
            for code, example in examples.items():
                value = example["value"]
                assert value["code"] == code
                assert value["status"] == int(status)
                assert value["title"] == CODES[code].title
                assert value["type"].endswith("/" + code)
                # The example is what the response's own schema admits (its refs resolve in the document).
                response_schema = response["content"]["application/problem+json"]["schema"]
                jsonschema.Draft202012Validator({**response_schema, "components": schema["components"]}).validate(value)


async def test_the_statuses_every_route_can_send_are_declared(schema: dict[str, Any]) -> None:
    for method, path, operation in operations(schema):
        statuses = set(operation["responses"])
        if (method, path) == ("get", "/health"):
            assert statuses == {"200"}
            continue
        assert {"500", "503"} <= statuses, (method, path)
        if path.startswith("/v1/") and (method, path) not in PUBLIC:
            assert {"401", "429"} <= statuses, (method, path)
            assert "unauthenticated" in problem_codes(schema, operation["responses"]["401"])
        if "{" in path and path.startswith("/v1/"):
            assert "404" in statuses, (method, path)
        if operation.get("requestBody"):
            assert {"400", "413", "415"} <= statuses, (method, path)
        for status, response in operation["responses"].items():
            headers = response.get("headers", {})
            assert "X-Request-ID" in headers, (method, path, status)
            if status == "201":
                assert headers["Location"]["required"] is True, (method, path)
            if status in ("429", "503"):
                assert headers["Retry-After"]["required"] is True, (method, path, status)


async def test_public_endpoints_need_no_token_and_declare_only_what_they_send(schema: dict[str, Any]) -> None:
    for method, path, operation in operations(schema):
        if (method, path) in PUBLIC:
            assert operation["security"] == [], path
        else:
            assert operation["security"] == [{"bearer": []}], (method, path)
    assert set(schema["paths"]["/ready"]["get"]["responses"]) == {"200", "500", "503"}


async def test_every_enum_is_one_named_schema(schema: dict[str, Any]) -> None:
    components = schema["components"]["schemas"]
    enums = {name: tuple(s["enum"]) for name, s in components.items() if "enum" in s}
    assert len(set(enums.values())) == len(enums), enums
    assert {"MemberRole", "PrincipalRole", "TransactionKind", "AccountKind", "HoldStatus", "ProblemCode"} <= set(enums)
    assert enums["ProblemCode"] == tuple(CODES)
    for method, path, operation in operations(schema):
        for node in nodes(operation):
            if "enum" in node and node is not operation:
                # Only a problem response's own list of codes is inline.
                assert node.get("type") == "string", (method, path, node)
                assert set(node["enum"]) <= set(CODES), (method, path, node)
    for name, component in components.items():
        if name in enums:
            continue
        for node in nodes(component):
            assert "enum" not in node, (name, node)


async def test_links_chain_the_operations_that_feed_each_other(schema: dict[str, Any]) -> None:
    by_id = {operation["operationId"]: operation for _, _, operation in operations(schema)}
    expected = {
        "create_member": {"issue_token", "get_member", "get_account", "post_credit", "place_hold", "post_transfer"},
        "post_credit": {"get_transaction", "reverse_transaction"},
        "place_hold": {"capture_hold", "release_hold", "get_hold"},
        "create_community": {"create_member"},
    }
    for source, targets in expected.items():
        (success,) = [r for s, r in by_id[source]["responses"].items() if s.startswith("2")]
        linked = {link["operationId"] for link in success["links"].values()}
        assert targets <= linked, (source, linked)
    for source, operation in by_id.items():
        for response in operation["responses"].values():
            for link in response.get("links", {}).values():
                target = by_id[link["operationId"]]
                names = {p["name"] for p in target.get("parameters", [])}
                assert set(link["parameters"]) <= names, (source, link)
                if "requestBody" in link:
                    body = resolve(schema, target["requestBody"]["content"]["application/json"]["schema"])
                    assert set(link["requestBody"]) <= set(body["properties"]), (source, link)


async def test_declared_limits(schema: dict[str, Any]) -> None:
    components = schema["components"]["schemas"]
    credit = components["CreditCreate"]["properties"]
    assert credit["minutes"]["minimum"] == 1
    assert re.fullmatch(credit["service_date"]["pattern"], "1900-01-01")
    assert not re.fullmatch(credit["service_date"]["pattern"], "1899-12-31")
    assert not re.fullmatch(credit["service_date"]["pattern"], "3000-01-01")
    assert components["MemberCreate"]["properties"]["roles"]["uniqueItems"] is True
    expires_at = components["HoldCreate"]["properties"]["expires_at"]
    assert re.search(expires_at["pattern"], "2026-12-01T08:00:00+08:00")
    assert not re.search(expires_at["pattern"], "2026-12-01T08:00:00")
    release = schema["paths"]["/v1/holds/{hold_id}/release"]["post"]
    assert release["requestBody"]["required"] is False


async def test_schema_is_also_a_plain_page_for_people(api: Api, schema: dict[str, Any]) -> None:
    page = await api.get("/schema", None)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    text = page.text
    assert "<script" not in text
    assert "http://" not in text
    assert "https://" not in text
    for _, path, operation in operations(schema):
        assert f"id='{operation['operationId']}'" in text, path
