"""HTTP as RFC 9110 and the OpenAPI document say: Allow on 405, Location on 201, and the edges of
what the schema admits (admitted requests are never 400; refused ones never change anything)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.client import Api


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/v1/credits", {"POST", "OPTIONS"}),
        ("GET", "/v1/credits", {"POST", "OPTIONS"}),
        ("PATCH", "/health", {"GET", "OPTIONS"}),
        ("POST", "/v1/me", {"GET", "OPTIONS"}),
        ("DELETE", "/v1/communities", {"GET", "POST", "OPTIONS"}),
    ],
)
async def test_405_names_the_methods_the_resource_has(api: Api, method: str, path: str, allowed: set[str]) -> None:
    response = await api.client.request(method, path, headers=api.auth(api.admin_token))
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert {m.strip() for m in response.headers["allow"].split(",")} == allowed


async def test_every_201_says_where_the_created_resource_is(api: Api) -> None:
    slug = "c-" + uuid.uuid4().hex[:12]
    created = await api.post("/v1/communities", api.admin_token, {"slug": slug, "name": "紫轩社区"}, key=None)
    assert created.status_code == 201
    assert created.headers["location"] == f"/v1/communities/{slug}"
    assert (await api.get(created.headers["location"], api.admin_token)).status_code == 200

    member = await api.post(
        f"/v1/communities/{slug}/members",
        api.admin_token,
        {"display_name": "王丽华", "roles": ["volunteer", "resident"], "grid": "3"},
        key=None,
    )
    assert member.status_code == 201
    member_id = member.json()["id"]
    assert member.headers["location"] == f"/v1/members/{member_id}"
    token = await api.post(f"/v1/members/{member_id}/tokens", api.admin_token, key=None)
    assert token.status_code == 201
    assert token.headers["location"] == f"/v1/members/{member_id}/tokens"

    credit = {"member_id": member_id, "minutes": 120, "service_date": "2026-11-01"}
    key = uuid.uuid4().hex
    posted = await api.post("/v1/credits", api.admin_token, credit, key=key)
    assert posted.status_code == 201
    assert posted.headers["location"] == f"/v1/transactions/{posted.json()['id']}"
    replay = await api.post("/v1/credits", api.admin_token, credit, key=key)
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.headers["location"] == posted.headers["location"]

    hold = await api.post("/v1/holds", api.admin_token, {"member_id": member_id, "minutes": 60})
    assert hold.status_code == 201
    assert hold.headers["location"] == f"/v1/holds/{hold.json()['id']}"
    capture = await api.post(f"/v1/holds/{hold.json()['id']}/capture", api.admin_token, {})
    assert capture.status_code == 201
    assert capture.headers["location"] == f"/v1/transactions/{capture.json()['id']}"
    reversal = await api.post(f"/v1/transactions/{posted.json()['id']}/reversal", api.admin_token, {"reason": "错记"})
    assert reversal.status_code == 422  # the captured hour left the account: the reversal obeys the floor
    release_target = await api.post("/v1/holds", api.admin_token, {"member_id": member_id, "minutes": 15})
    released = await api.post(f"/v1/holds/{release_target.json()['id']}/release", api.admin_token)
    assert released.status_code == 200
    assert "location" not in released.headers


async def test_a_hold_is_released_without_a_body(api: Api) -> None:
    community = await api.community()
    resident = await api.member(community, "volunteer", "resident")
    assert (await api.credit(resident, 60)).status_code == 201
    hold = await api.post("/v1/holds", resident.token, {"member_id": resident.id, "minutes": 30})
    released = await api.post(f"/v1/holds/{hold.json()['id']}/release", api.admin_token)
    assert released.status_code == 200, released.text
    assert released.json()["status"] == "released"


async def test_duplicate_roles_are_refused_not_merged(api: Api) -> None:
    community = await api.community()
    response = await api.post(
        f"/v1/communities/{community.slug}/members",
        api.admin_token,
        {"display_name": "周彦芳", "roles": ["volunteer", "volunteer"], "grid": "1"},
        key=None,
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_request"
    assert [e["field"] for e in body["errors"]] == ["$.roles"]


@pytest.mark.parametrize("moment", ["1900-01-01T00:00:00+14:00", "2999-12-31T23:59:59-12:00"])
async def test_the_edges_of_the_year_window_are_admitted(api: Api, moment: str) -> None:
    """The schema admits years 1900–2999 as written; so does the server, whatever the offset."""
    community = await api.community()
    resident = await api.member(community, "volunteer", "resident")
    response = await api.get(f"/v1/accounts/{resident.account_id}/balance", api.admin_token, as_of=moment)
    assert response.status_code == 200, response.text


async def test_transfer_target_rule_is_422(api: Api) -> None:
    community = await api.community()
    giver = await api.member(community, "volunteer")
    body: dict[str, Any] = {"from_member_id": giver.id, "minutes": 15, "to_pool": False}
    response = await api.post("/v1/transfers", giver.token, body)
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_transfer_target"


async def test_to_before_from_is_422(api: Api) -> None:
    community = await api.community()
    member = await api.member(community, "volunteer")
    response = await api.get(
        f"/v1/accounts/{member.account_id}/entries",
        api.admin_token,
        **{"from": "2026-12-01T00:00:00Z", "to": "2026-11-01T00:00:00Z"},
    )
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_date_range"


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/v1/communities", {"GET", "POST", "OPTIONS"}),
        ("/v1/communities/zixuan/members", {"GET", "POST", "OPTIONS"}),
        ("/v1/holds/7d1e3a52-4a0b-4c1e-9d8e-2b6f0a9c3e11/capture", {"POST", "OPTIONS"}),
        ("/health", {"GET", "OPTIONS"}),
    ],
)
async def test_options_lists_every_method_without_a_token(api: Api, path: str, allowed: set[str]) -> None:
    response = await api.client.request("OPTIONS", path)
    assert response.status_code == 204
    assert {m.strip() for m in response.headers["allow"].split(",")} == allowed


@pytest.mark.parametrize(
    "query",
    ["limit=5&limit=6", "limit=null", "role=null", "role=volunteer&role=resident", "cursor=a&cursor=b"],
)
async def test_query_parameters_are_taken_as_written_or_refused(api: Api, query: str) -> None:
    community = await api.community()
    response = await api.client.get(
        f"/v1/communities/{community.slug}/members?{query}", headers=api.auth(api.admin_token)
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "invalid_request"
    assert [e["field"] for e in body["errors"]] == [query.split("=", 1)[0]]


async def test_free_text_may_be_the_word_null(api: Api) -> None:
    community = await api.community()
    response = await api.client.get(
        f"/v1/communities/{community.slug}/members?q=null", headers=api.auth(api.admin_token)
    )
    assert response.status_code == 200, response.text
