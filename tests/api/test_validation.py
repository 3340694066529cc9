"""Hostile input: never a 500, never a write, always problem+json with a code.

Malformed bodies, wrong types, odd numbers, unknown or duplicated fields, NUL characters, strings
over their limits, ids that are not UUIDs, SQL-looking text, deep nesting, oversized bodies, the
wrong content type and bad paging parameters. Validation errors name the JSON path of each fault.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from tests.client import Api, Community, Member
from timebank.config import Settings

PROBLEM_MEDIA_TYPE = "application/problem+json"
SERVICE_DATE = "2026-11-01"


def assert_problem(response: Any, status: int | set[int], code: str | set[str]) -> dict[str, Any]:
    """problem+json with type/title/status/detail/code; status and code as expected."""
    statuses = {status} if isinstance(status, int) else status
    codes = {code} if isinstance(code, str) else code
    assert response.status_code in statuses, (response.status_code, response.text)
    assert response.headers["content-type"].split(";")[0].strip() == PROBLEM_MEDIA_TYPE, response.headers
    body = response.json()
    assert isinstance(body, dict), body
    for member in ("type", "title", "status", "detail", "code"):
        assert member in body, (member, body)
    assert body["status"] == response.status_code
    assert body["code"] in codes, body
    return body


def fields_of(body: dict[str, Any]) -> list[str]:
    return [e["field"] for e in body.get("errors") or []]


async def community_state(owner: asyncpg.Connection, community: Community) -> tuple[Any, ...]:
    """Everything a request could have written in a community."""
    community_id = uuid.UUID(community.id)
    accounts = await owner.fetch(
        "select id, balance_minutes, held_minutes, version from accounts where community_id = $1 order by id",
        community_id,
    )
    counts = await owner.fetchrow(
        """
        select (select count(*) from transactions where community_id = $1) as transactions,
               (select count(*) from holds where community_id = $1) as holds,
               (select count(*) from members where community_id = $1) as members,
               (select count(*) from audit_events where community_id = $1 and action <> 'write.rejected'
                                                    and action <> 'request.denied') as changes
        """,
        community_id,
    )
    policy = await owner.fetchrow(
        "select name, unit_minutes, max_transaction_minutes, max_balance_minutes, overdraft_minutes"
        " from communities where id = $1",
        community_id,
    )
    return tuple(tuple(a) for a in accounts), tuple(counts or ()), tuple(policy or ())


def headers(api: Api, content_type: str | None = "application/json", key: str | None = "auto") -> dict[str, str]:
    sent = {"Authorization": f"Bearer {api.admin_token}"}
    if content_type is not None:
        sent["Content-Type"] = content_type
    if key is not None:
        sent["Idempotency-Key"] = uuid.uuid4().hex if key == "auto" else key
    return sent


async def post_raw(api: Api, path: str, content: bytes, content_type: str | None = "application/json") -> Any:
    return await api.client.post(path, headers=headers(api, content_type), content=content)


@dataclass
class Setup:
    community: Community
    volunteer: Member


@pytest.fixture
async def setup(api: Api) -> Setup:
    community = await api.community()
    volunteer = await api.member(community, "volunteer", "resident")
    return Setup(community, volunteer)


def credit(member: Member, **changes: Any) -> dict[str, Any]:
    return {"member_id": member.id, "minutes": 60, "service_date": SERVICE_DATE, "description": "陪聊", **changes}


# --- malformed bodies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"{", id="truncated"),
        pytest.param(b'{"member_id": ', id="truncated-value"),
        pytest.param(b"{'minutes': 60}", id="single-quotes"),
        pytest.param(b'{"minutes": 60,}', id="trailing-comma"),
        pytest.param(b'{"minutes": 60} trailing', id="trailing-garbage"),
        pytest.param(b'{"minutes": NaN}', id="nan"),
        pytest.param(b"", id="empty"),
        pytest.param(b"null", id="null"),
        pytest.param(b"[]", id="array"),
        pytest.param(b'"text"', id="string"),
        pytest.param(b"\xef\xbb\xbf{}", id="bom"),
    ],
)
async def test_bad_json_is_invalid_request(api: Api, owner: asyncpg.Connection, setup: Setup, content: bytes) -> None:
    before = await community_state(owner, setup.community)
    response = await post_raw(api, "/v1/credits", content)
    assert_problem(response, 400, "invalid_request")
    assert await community_state(owner, setup.community) == before


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b'{"member_id": "\xff\xfe"}', id="invalid-start-byte"),
        pytest.param(b'{"member_id": "x", "description": "\xe4\xbd"}', id="truncated-sequence"),
        pytest.param(b'{"description": "\xed\xa0\x80"}', id="surrogate"),
        pytest.param(b'{"description": "\xc0\xaf"}', id="overlong"),
    ],
)
async def test_invalid_utf8_is_invalid_request(
    api: Api, owner: asyncpg.Connection, setup: Setup, content: bytes
) -> None:
    before = await community_state(owner, setup.community)
    response = await post_raw(api, "/v1/credits", content)
    assert_problem(response, 400, "invalid_request")
    assert await community_state(owner, setup.community) == before


async def test_invalid_utf8_inside_a_valid_credit(api: Api, owner: asyncpg.Connection, setup: Setup) -> None:
    before = await community_state(owner, setup.community)
    body = json.dumps(credit(setup.volunteer, description="XX")).encode().replace(b"XX", b"\xff\xfe")
    response = await post_raw(api, "/v1/credits", body)
    assert_problem(response, 400, "invalid_request")
    assert await community_state(owner, setup.community) == before


async def test_lone_surrogate_escape_is_refused(api: Api, owner: asyncpg.Connection, setup: Setup) -> None:
    """`\\ud800` is valid JSON text but no Unicode string; it must not reach the database."""
    before = await community_state(owner, setup.community)
    body = json.dumps(credit(setup.volunteer, description="XX")).encode().replace(b"XX", b"\\ud800")
    response = await post_raw(api, "/v1/credits", body)
    assert_problem(response, 400, "invalid_request")
    assert await community_state(owner, setup.community) == before


# --- types and numbers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "minutes",
    [
        pytest.param("60", id="numeric-string"),
        pytest.param("sixty", id="string"),
        pytest.param(1.5, id="fraction"),
        pytest.param(60.5, id="fraction-large"),
        pytest.param(True, id="true"),
        pytest.param(None, id="null"),
        pytest.param([60], id="array"),
        pytest.param({"value": 60}, id="object"),
    ],
)
async def test_wrong_type_for_minutes(api: Api, owner: asyncpg.Connection, setup: Setup, minutes: Any) -> None:
    before = await community_state(owner, setup.community)
    response = await api.post("/v1/credits", api.admin_token, credit(setup.volunteer, minutes=minutes))
    body = assert_problem(response, 400, "invalid_request")
    assert fields_of(body) == ["$.minutes"], body
    assert all(isinstance(e["message"], str) and e["message"] for e in body["errors"])
    assert await community_state(owner, setup.community) == before


@pytest.mark.parametrize("text", ["60.0", "6e1", "6.0E+1", "600e-1"])
async def test_an_integral_number_is_the_integer_it_equals(
    api: Api, owner: asyncpg.Connection, setup: Setup, text: str
) -> None:
    """JSON Schema's `integer` admits 60.0, so the API takes it as 60 minutes (never as a float)."""
    body = json.dumps(credit(setup.volunteer, minutes=12345)).replace("12345", text).encode()
    response = await post_raw(api, "/v1/credits", body)
    assert response.status_code == 201, response.text
    assert sorted(p["minutes"] for p in response.json()["postings"]) == [-60, 60]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("member_id", 12345),
        ("service_date", 20261101),
        ("service_date", "01/11/2026"),
        ("service_date", "2026-02-30"),
        ("description", 42),
        ("description", ["陪聊"]),
    ],
)
async def test_wrong_type_for_other_fields(
    api: Api, owner: asyncpg.Connection, setup: Setup, field: str, value: Any
) -> None:
    before = await community_state(owner, setup.community)
    response = await api.post("/v1/credits", api.admin_token, credit(setup.volunteer, **{field: value}))
    body = assert_problem(response, 400, "invalid_request")
    assert fields_of(body) == [f"$.{field}"], body
    assert await community_state(owner, setup.community) == before


async def test_numeric_strings_are_not_coerced_in_nested_policy(api: Api, slug: str) -> None:
    response = await api.post(
        "/v1/communities", api.admin_token, {"slug": slug, "name": "x", "policy": {"unit_minutes": "15"}}, key=None
    )
    body = assert_problem(response, 400, "invalid_request")
    assert fields_of(body) == ["$.policy.unit_minutes"]
    assert (await api.get(f"/v1/communities/{slug}", api.admin_token)).status_code == 404


@pytest.mark.parametrize("minutes", [0, -1, -15, -60])
async def test_non_positive_minutes_are_out_of_range(
    api: Api, owner: asyncpg.Connection, setup: Setup, minutes: int
) -> None:
    before = await community_state(owner, setup.community)
    for path, body in (
        ("/v1/credits", credit(setup.volunteer, minutes=minutes)),
        ("/v1/redemptions", {"member_id": setup.volunteer.id, "minutes": minutes}),
        ("/v1/holds", {"member_id": setup.volunteer.id, "minutes": minutes}),
    ):
        response = await api.post(path, api.admin_token, body)
        assert_problem(response, 422, "amount_out_of_range")
    assert await community_state(owner, setup.community) == before


@pytest.mark.parametrize(
    "minutes",
    [
        pytest.param(2**31, id="2^31"),
        pytest.param(2**63 - 1, id="2^63-1"),
        pytest.param(2**63, id="2^63"),
        pytest.param(2**64, id="2^64"),
        pytest.param(10**30, id="10^30"),
        pytest.param(-(2**63), id="-2^63"),
        pytest.param(-(2**63) - 1, id="-2^63-1"),
    ],
)
async def test_huge_minutes_are_refused_without_500(
    api: Api, owner: asyncpg.Connection, setup: Setup, minutes: int
) -> None:
    before = await community_state(owner, setup.community)
    for path, body in (
        ("/v1/credits", credit(setup.volunteer, minutes=minutes)),
        ("/v1/transfers", {"from_member_id": setup.volunteer.id, "to_pool": True, "minutes": minutes}),
        ("/v1/holds", {"member_id": setup.volunteer.id, "minutes": minutes}),
    ):
        response = await post_raw(api, path, json.dumps(body).encode())
        problem = assert_problem(response, {400, 422}, {"invalid_request", "amount_out_of_range"})
        assert (problem["status"], problem["code"]) in {(400, "invalid_request"), (422, "amount_out_of_range")}
    assert await community_state(owner, setup.community) == before


async def test_huge_capture_minutes_are_refused_without_500(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    member = await api.member(community, "volunteer", "resident")
    assert (await api.credit(member, 120)).status_code == 201
    placed = await api.post("/v1/holds", member.token, {"member_id": member.id, "minutes": 60})
    assert placed.status_code == 201, placed.text
    before = await community_state(owner, community)
    for minutes in (2**63, 2**64, -(2**63) - 1):
        response = await post_raw(
            api, f"/v1/holds/{placed.json()['id']}/capture", json.dumps({"minutes": minutes}).encode()
        )
        assert_problem(response, {400, 422}, {"invalid_request", "amount_out_of_range", "capture_exceeds_hold"})
    assert await community_state(owner, community) == before


@pytest.mark.parametrize("service_date", ["0001-01-01", "9999-12-31"])
async def test_extreme_service_dates_never_500(
    api: Api, owner: asyncpg.Connection, setup: Setup, service_date: str
) -> None:
    """Either refused, or stored and answered as sent (asyncpg turns date.min/max into ±infinity)."""
    before = await community_state(owner, setup.community)
    response = await api.post("/v1/credits", api.admin_token, credit(setup.volunteer, service_date=service_date))
    if response.status_code == 201:
        assert response.json()["service_date"] == service_date
        stored = await owner.fetchval(
            "select service_date::text from transactions where id = $1", uuid.UUID(response.json()["id"])
        )
        assert stored == service_date
    else:
        assert_problem(response, 400, "invalid_request")
        assert await community_state(owner, setup.community) == before


# --- fields -------------------------------------------------------------------------------------


async def test_unknown_fields_are_refused(api: Api, owner: asyncpg.Connection, setup: Setup) -> None:
    before = await community_state(owner, setup.community)
    for path, body in (
        ("/v1/credits", credit(setup.volunteer, approved=True)),
        ("/v1/redemptions", {"member_id": setup.volunteer.id, "minutes": 15, "minutes_override": 0}),
        ("/v1/transfers", {"from_member_id": setup.volunteer.id, "to_pool": True, "minutes": 15, "is_admin": True}),
    ):
        response = await api.post(path, api.admin_token, body)
        problem = assert_problem(response, 400, "invalid_request")
        assert problem.get("errors"), problem
    member = await api.post(
        f"/v1/communities/{setup.community.slug}/members",
        api.admin_token,
        {"display_name": "x", "roles": ["volunteer"], "community_id": str(uuid.uuid4())},
        key=None,
    )
    assert_problem(member, 400, "invalid_request")
    assert await community_state(owner, setup.community) == before


async def test_duplicated_json_keys_are_refused(api: Api, owner: asyncpg.Connection, setup: Setup) -> None:
    """Parsers disagree on which duplicate wins, so an ambiguous body must not move hours."""
    before = await community_state(owner, setup.community)
    body = f'{{"member_id": "{setup.volunteer.id}", "minutes": 15, "minutes": 600, "service_date": "{SERVICE_DATE}"}}'
    response = await post_raw(api, "/v1/credits", body.encode())
    assert_problem(response, 400, "invalid_request")
    assert await community_state(owner, setup.community) == before


async def test_missing_required_field_names_it(api: Api, owner: asyncpg.Connection, setup: Setup) -> None:
    before = await community_state(owner, setup.community)
    body = credit(setup.volunteer)
    del body["minutes"]
    response = await api.post("/v1/credits", api.admin_token, body)
    problem = assert_problem(response, 400, "invalid_request")
    assert fields_of(problem) == ["$.minutes"], problem
    assert await community_state(owner, setup.community) == before


async def test_unknown_field_is_named_by_its_path(api: Api, owner: asyncpg.Connection, setup: Setup) -> None:
    before = await community_state(owner, setup.community)
    response = await api.post("/v1/credits", api.admin_token, credit(setup.volunteer, approved=True))
    problem = assert_problem(response, 400, "invalid_request")
    assert fields_of(problem) == ["$.approved"], problem
    assert await community_state(owner, setup.community) == before


async def test_validation_errors_carry_json_paths(api: Api, slug: str) -> None:
    policy = await api.post(
        "/v1/communities", api.admin_token, {"slug": slug, "name": "x", "policy": {"unit_minutes": 0}}, key=None
    )
    assert fields_of(assert_problem(policy, 400, "invalid_request")) == ["$.policy.unit_minutes"]
    community = await api.community()
    roles = await api.post(
        f"/v1/communities/{community.slug}/members",
        api.admin_token,
        {"display_name": "x", "roles": ["volunteer", "wizard"]},
        key=None,
    )
    assert fields_of(assert_problem(roles, 400, "invalid_request")) == ["$.roles[1]"]


# --- strings ------------------------------------------------------------------------------------


async def test_nul_in_strings_is_refused(api: Api, owner: asyncpg.Connection, setup: Setup) -> None:
    before = await community_state(owner, setup.community)
    member = await api.post(
        f"/v1/communities/{setup.community.slug}/members",
        api.admin_token,
        {"display_name": "周\u0000彦芳", "roles": ["volunteer"]},
        key=None,
    )
    assert fields_of(assert_problem(member, 400, "invalid_request")) == ["$.display_name"]
    grid = await api.post(
        f"/v1/communities/{setup.community.slug}/members",
        api.admin_token,
        {"display_name": "周彦芳", "roles": ["volunteer"], "grid": "3\u0000"},
        key=None,
    )
    assert fields_of(assert_problem(grid, 400, "invalid_request")) == ["$.grid"]
    described = await api.post("/v1/credits", api.admin_token, credit(setup.volunteer, description="a\u0000b"))
    assert fields_of(assert_problem(described, 400, "invalid_request")) == ["$.description"]
    named = await api.post(
        "/v1/communities", api.admin_token, {"slug": "n-" + uuid.uuid4().hex[:10], "name": "社\u0000区"}, key=None
    )
    assert fields_of(assert_problem(named, 400, "invalid_request")) == ["$.name"]
    assert await community_state(owner, setup.community) == before


async def test_display_name_limit_is_100_characters(api: Api, setup: Setup) -> None:
    path = f"/v1/communities/{setup.community.slug}/members"
    ok = await api.post(path, api.admin_token, {"display_name": "周" * 100, "roles": ["volunteer"]}, key=None)
    assert ok.status_code == 201, ok.text
    assert ok.json()["display_name"] == "周" * 100
    too_long = await api.post(path, api.admin_token, {"display_name": "周" * 101, "roles": ["volunteer"]}, key=None)
    assert fields_of(assert_problem(too_long, 400, "invalid_request")) == ["$.display_name"]
    empty = await api.post(path, api.admin_token, {"display_name": "", "roles": ["volunteer"]}, key=None)
    assert_problem(empty, 400, "invalid_request")


async def test_community_name_limit_is_100_characters(api: Api) -> None:
    slug_ok, slug_long = "n-" + uuid.uuid4().hex[:12], "n-" + uuid.uuid4().hex[:12]
    ok = await api.post("/v1/communities", api.admin_token, {"slug": slug_ok, "name": "紫" * 100}, key=None)
    assert ok.status_code == 201, ok.text
    assert ok.json()["name"] == "紫" * 100
    too_long = await api.post("/v1/communities", api.admin_token, {"slug": slug_long, "name": "紫" * 101}, key=None)
    assert fields_of(assert_problem(too_long, 400, "invalid_request")) == ["$.name"]
    assert (await api.get(f"/v1/communities/{slug_long}", api.admin_token)).status_code == 404


async def test_description_limit_is_500_characters(api: Api, owner: asyncpg.Connection, setup: Setup) -> None:
    ok = await api.post("/v1/credits", api.admin_token, credit(setup.volunteer, description="助" * 500))
    assert ok.status_code == 201, ok.text
    assert ok.json()["description"] == "助" * 500
    before = await community_state(owner, setup.community)
    for path, body in (
        ("/v1/credits", credit(setup.volunteer, description="助" * 501)),
        ("/v1/redemptions", {"member_id": setup.volunteer.id, "minutes": 15, "description": "助" * 501}),
        ("/v1/holds", {"member_id": setup.volunteer.id, "minutes": 15, "description": "助" * 501}),
    ):
        response = await api.post(path, api.admin_token, body)
        assert fields_of(assert_problem(response, 400, "invalid_request")) == ["$.description"]
    assert await community_state(owner, setup.community) == before


async def test_reason_limit_is_500_characters(api: Api, owner: asyncpg.Connection, setup: Setup) -> None:
    first = await api.credit(setup.volunteer, 60)
    second = await api.credit(setup.volunteer, 60)
    before = await community_state(owner, setup.community)
    too_long = await api.post(
        f"/v1/transactions/{first.json()['id']}/reversal", api.admin_token, {"reason": "错" * 501}
    )
    assert fields_of(assert_problem(too_long, 400, "invalid_request")) == ["$.reason"]
    assert await community_state(owner, setup.community) == before
    ok = await api.post(f"/v1/transactions/{second.json()['id']}/reversal", api.admin_token, {"reason": "错" * 500})
    assert ok.status_code == 201, ok.text
    assert ok.json()["description"] == "错" * 500


async def test_sql_looking_strings_are_stored_verbatim(api: Api, setup: Setup) -> None:
    name = "Robert'); DROP TABLE members;--"
    grid = "1' OR '1'='1"
    created = await api.post(
        f"/v1/communities/{setup.community.slug}/members",
        api.admin_token,
        {"display_name": name, "roles": ["volunteer"], "grid": grid, "external_ref": "$$; select pg_sleep(10); $$"},
        key=None,
    )
    assert created.status_code == 201, created.text
    member = (await api.get(f"/v1/members/{created.json()['id']}", api.admin_token)).json()
    assert member["display_name"] == name
    assert member["grid"] == grid
    assert member["external_ref"] == "$$; select pg_sleep(10); $$"

    description = "x\\'; UPDATE accounts SET balance_minutes = 999999; -- \u202e"
    credited = await api.post("/v1/credits", api.admin_token, credit(setup.volunteer, description=description))
    assert credited.status_code == 201, credited.text
    stored = await api.get(f"/v1/transactions/{credited.json()['id']}", api.admin_token)
    assert stored.json()["description"] == description
    assert await api.balance(setup.volunteer.account_id) == 60

    found = await api.get(f"/v1/communities/{setup.community.slug}/members", api.admin_token, q="'); DROP TABLE")
    assert found.status_code == 200, found.text
    assert [m["id"] for m in found.json()["items"]] == [created.json()["id"]]
    everyone = await api.get(f"/v1/communities/{setup.community.slug}/members", api.admin_token, q="' OR 1=1 --")
    assert everyone.status_code == 200
    assert everyone.json()["items"] == []
    by_grid = await api.get(f"/v1/communities/{setup.community.slug}/members", api.admin_token, grid=grid)
    assert [m["id"] for m in by_grid.json()["items"]] == [created.json()["id"]]


# --- ids ----------------------------------------------------------------------------------------

BAD_IDS = [
    "not-a-uuid",
    "1",
    "00000000-0000-0000-0000-00000000000g",
    "'%3B%20drop%20table%20accounts%3B--",
    "%00",
    "a" * 1000,
]


@pytest.mark.parametrize("bad", BAD_IDS)
@pytest.mark.parametrize(
    ("method", "template"),
    [
        ("GET", "/v1/accounts/{}"),
        ("GET", "/v1/accounts/{}/entries"),
        ("GET", "/v1/accounts/{}/balance"),
        ("GET", "/v1/transactions/{}"),
        ("GET", "/v1/members/{}"),
        ("GET", "/v1/holds/{}"),
        ("POST", "/v1/transactions/{}/reversal"),
        ("POST", "/v1/holds/{}/capture"),
        ("POST", "/v1/holds/{}/release"),
        ("POST", "/v1/members/{}/tokens"),
    ],
)
async def test_non_uuid_ids_in_paths(api: Api, method: str, template: str, bad: str) -> None:
    path = template.format(bad)
    if method == "GET":
        response = await api.get(path, api.admin_token)
    else:
        response = await api.post(path, api.admin_token, {"reason": "x"} if "reversal" in path else None)
    assert_problem(response, {400, 404}, {"invalid_request", "not_found"})


@pytest.mark.parametrize("bad", ["abc", "", "00000000-0000-0000-0000-00000000000g", "' OR 1=1 --", "1" * 100])
async def test_non_uuid_ids_in_bodies(api: Api, owner: asyncpg.Connection, setup: Setup, bad: str) -> None:
    before = await community_state(owner, setup.community)
    volunteer = setup.volunteer
    cases = [
        ("/v1/credits", credit(volunteer, member_id=bad), "$.member_id"),
        (
            "/v1/redemptions",
            {"member_id": volunteer.id, "minutes": 15, "provider_member_id": bad},
            "$.provider_member_id",
        ),
        ("/v1/transfers", {"from_member_id": volunteer.id, "to_member_id": bad, "minutes": 15}, "$.to_member_id"),
        ("/v1/pool-grants", {"member_id": bad, "minutes": 15}, "$.member_id"),
        ("/v1/holds", {"member_id": bad, "minutes": 15}, "$.member_id"),
    ]
    for path, body, field in cases:
        response = await api.post(path, api.admin_token, body)
        assert fields_of(assert_problem(response, 400, "invalid_request")) == [field], (path, response.text)
    assert await community_state(owner, setup.community) == before


# --- size, nesting and content type -------------------------------------------------------------


@pytest.mark.parametrize(
    "where",
    ["description", "unknown-field", "whole-body", "nested-objects"],
)
async def test_deeply_nested_json_is_invalid_request(
    api: Api, owner: asyncpg.Connection, setup: Setup, where: str
) -> None:
    depth = 10_000
    arrays = "[" * depth + "]" * depth
    objects = '{"a":' * depth + "1" + "}" * depth
    prefix = f'{{"member_id": "{setup.volunteer.id}", "minutes": 60, "service_date": "{SERVICE_DATE}"'
    content = {
        "description": f'{prefix}, "description": {arrays}}}',
        "unknown-field": f'{prefix}, "extra": {arrays}}}',
        "whole-body": arrays,
        "nested-objects": f'{prefix}, "description": {objects}}}',
    }[where]
    assert len(content) < 65_536
    before = await community_state(owner, setup.community)
    response = await post_raw(api, "/v1/credits", content.encode())
    assert_problem(response, 400, "invalid_request")
    assert await community_state(owner, setup.community) == before


async def test_body_over_the_limit_is_413(
    api: Api, owner: asyncpg.Connection, setup: Setup, settings: Settings
) -> None:
    before = await community_state(owner, setup.community)
    filler = "x" * settings.max_body_bytes
    body = json.dumps(credit(setup.volunteer, description=filler)).encode()
    assert len(body) > settings.max_body_bytes
    response = await post_raw(api, "/v1/credits", body)
    assert_problem(response, 413, "request_too_large")
    member = await api.client.post(
        f"/v1/communities/{setup.community.slug}/members",
        headers=headers(api, key=None),
        content=json.dumps({"display_name": "x", "roles": ["volunteer"], "grid": filler}).encode(),
    )
    assert_problem(member, 413, "request_too_large")
    assert await community_state(owner, setup.community) == before


async def test_body_just_under_the_limit_is_judged_on_its_content(
    api: Api, owner: asyncpg.Connection, setup: Setup, settings: Settings
) -> None:
    before = await community_state(owner, setup.community)
    body = json.dumps(credit(setup.volunteer, description="")).encode()
    padded = body[:-1] + b" " * (settings.max_body_bytes - len(body)) + b"}"
    assert len(padded) == settings.max_body_bytes
    response = await post_raw(api, "/v1/credits", padded)
    assert response.status_code == 201, response.text
    assert await community_state(owner, setup.community) != before


@dataclass
class RawResponse:
    status_code: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def test_streamed_body_over_the_limit_is_413(
    api: Api, owner: asyncpg.Connection, setup: Setup, settings: Settings
) -> None:
    """No Content-Length: the limit holds on the bytes actually received."""
    chunk = b" " * 1024
    chunks = [chunk] * (settings.max_body_bytes // len(chunk) + 2)
    sent: list[dict[str, Any]] = []
    events = iter(
        [{"type": "http.request", "body": c, "more_body": True} for c in chunks]
        + [{"type": "http.request", "body": b"", "more_body": False}]
    )

    async def receive() -> dict[str, Any]:
        return next(events, {"type": "http.disconnect"})

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/credits",
        "raw_path": b"/v1/credits",
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers(api).items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver.local", 80),
    }

    async def call() -> None:
        await api.client.app(scope, receive, send)

    before = await community_state(owner, setup.community)
    # The app runs in the test client's portal thread; call it there.
    await asyncio.to_thread(api.client.blocking_portal.call, call)
    start = next(m for m in sent if m["type"] == "http.response.start")
    response = RawResponse(
        status_code=start["status"],
        headers={k.decode().lower(): v.decode() for k, v in start["headers"]},
        body=b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"),
    )
    assert_problem(response, 413, "request_too_large")
    assert await community_state(owner, setup.community) == before


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
        "multipart/form-data; boundary=xyz",
    ],
)
async def test_wrong_content_type_is_refused(
    api: Api, owner: asyncpg.Connection, setup: Setup, content_type: str
) -> None:
    before = await community_state(owner, setup.community)
    body = json.dumps(credit(setup.volunteer)).encode()
    response = await post_raw(api, "/v1/credits", body, content_type=content_type)
    assert_problem(response, {400, 415}, {"invalid_request", "unsupported_media_type"})
    assert await community_state(owner, setup.community) == before


async def test_json_with_charset_is_accepted(api: Api, setup: Setup) -> None:
    body = json.dumps(credit(setup.volunteer)).encode()
    response = await post_raw(api, "/v1/credits", body, content_type="application/json; charset=utf-8")
    assert response.status_code == 201, response.text


# --- paging parameters --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"limit": "0"}, id="limit-0"),
        pytest.param({"limit": "501"}, id="limit-501"),
        pytest.param({"limit": "-1"}, id="limit-negative"),
        pytest.param({"limit": "ten"}, id="limit-text"),
        pytest.param({"limit": "1.5"}, id="limit-fraction"),
        pytest.param({"limit": str(2**64)}, id="limit-huge"),
        pytest.param({"cursor": "x" * 500}, id="cursor-long"),
        pytest.param({"cursor": "a b"}, id="cursor-space"),
        pytest.param({"cursor": "\x00"}, id="cursor-nul"),
    ],
)
@pytest.mark.parametrize(
    "endpoint",
    ["communities", "members", "transactions", "entries", "audit-events"],
)
async def test_bad_paging_parameters(api: Api, setup: Setup, endpoint: str, params: dict[str, str]) -> None:
    path = {
        "communities": "/v1/communities",
        "members": f"/v1/communities/{setup.community.slug}/members",
        "transactions": f"/v1/communities/{setup.community.slug}/transactions",
        "entries": f"/v1/accounts/{setup.volunteer.account_id}/entries",
        "audit-events": "/v1/audit-events",
    }[endpoint]
    response = await api.get(path, api.admin_token, **params)
    body = assert_problem(response, 400, "invalid_request")
    name = next(iter(params))
    assert any(name in f for f in fields_of(body)), body
    # The same endpoint answers a sane page.
    sane = await api.get(path, api.admin_token, limit=500)
    assert sane.status_code == 200, sane.text
    assert set(sane.json()) == {"items", "next_cursor"}


@pytest.mark.parametrize("cursor", ["garbage", "djE6LTE", "djI6MQ"])
@pytest.mark.parametrize("endpoint", ["communities", "members", "transactions", "entries", "audit-events"])
async def test_well_formed_cursors_not_issued_here_are_refused_by_rule(
    api: Api, setup: Setup, endpoint: str, cursor: str
) -> None:
    """A cursor of the documented shape satisfies the schema, so it is no 400: it is 422 invalid_cursor."""
    path = {
        "communities": "/v1/communities",
        "members": f"/v1/communities/{setup.community.slug}/members",
        "transactions": f"/v1/communities/{setup.community.slug}/transactions",
        "entries": f"/v1/accounts/{setup.volunteer.account_id}/entries",
        "audit-events": "/v1/audit-events",
    }[endpoint]
    response = await api.get(path, api.admin_token, cursor=cursor)
    body = assert_problem(response, 422, "invalid_cursor")
    assert [e["field"] for e in body["errors"]] == ["cursor"]
