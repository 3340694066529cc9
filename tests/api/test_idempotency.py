"""API.md's Idempotency section, clause by clause, for every POST that moves hours.

- the key is required (400 idempotency_key_required) and is 1–200 printable ASCII characters;
- same key + same body: the original status and body, `Idempotent-Replayed: true`, nothing moved;
- same key + different body: 409 idempotency_key_reused;
- a failure on a business rule is remembered, even after the balance has grown;
- keys are scoped to the caller; concurrent requests with one key have exactly one effect.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from tests.client import Api, Community, Member

PROBLEM_MEDIA_TYPE = "application/problem+json"


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0].strip() == PROBLEM_MEDIA_TYPE
    body: dict[str, Any] = response.json()
    for member in ("type", "title", "status", "detail", "code"):
        assert member in body, (member, body)
    assert body["status"] == status
    assert body["code"] == code
    return body


def replayed(response: Any) -> bool:
    return response.headers.get("idempotent-replayed") == "true"


async def ledger_state(owner: asyncpg.Connection, community: Community) -> tuple[Any, ...]:
    """Everything a write could change in a community's ledger."""
    community_id = uuid.UUID(community.id)
    accounts = await owner.fetch(
        "select id, balance_minutes, held_minutes, version from accounts where community_id = $1 order by id",
        community_id,
    )
    transactions = await owner.fetchval("select count(*) from transactions where community_id = $1", community_id)
    holds = await owner.fetchval("select count(*) from holds where community_id = $1", community_id)
    resolutions = await owner.fetchval(
        "select count(*) from hold_resolutions r join holds h on h.id = r.hold_id where h.community_id = $1",
        community_id,
    )
    return tuple(tuple(a) for a in accounts), transactions, holds, resolutions


async def funded(api: Api, community: Community, minutes: int) -> Member:
    member = await api.member(community, "volunteer", "resident")
    response = await api.credit(member, minutes)
    assert response.status_code == 201, response.text
    return member


@dataclass
class Write:
    """One hour-moving request, ready to send: the caller, the path and the body."""

    path: str
    token: str
    body: Any
    status: int


async def _credit(api: Api, community: Community) -> Write:
    member = await api.member(community, "volunteer")
    return Write(
        "/v1/credits", api.admin_token, {"member_id": member.id, "minutes": 60, "service_date": "2026-11-01"}, 201
    )


async def _redemption(api: Api, community: Community) -> Write:
    member = await funded(api, community, 120)
    return Write("/v1/redemptions", member.token, {"member_id": member.id, "minutes": 60, "description": "助浴"}, 201)


async def _transfer(api: Api, community: Community) -> Write:
    giver = await funded(api, community, 120)
    relative = await api.member(community, "resident")
    body = {"from_member_id": giver.id, "to_member_id": relative.id, "minutes": 60}
    return Write("/v1/transfers", giver.token, body, 201)


async def _donation(api: Api, community: Community) -> Write:
    giver = await funded(api, community, 120)
    return Write("/v1/transfers", giver.token, {"from_member_id": giver.id, "to_pool": True, "minutes": 60}, 201)


async def _pool_grant(api: Api, community: Community) -> Write:
    giver = await funded(api, community, 120)
    donation = await api.post(
        "/v1/transfers", giver.token, {"from_member_id": giver.id, "to_pool": True, "minutes": 90}
    )
    assert donation.status_code == 201, donation.text
    elder = await api.member(community, "resident")
    return Write("/v1/pool-grants", api.admin_token, {"member_id": elder.id, "minutes": 60}, 201)


async def _hold(api: Api, community: Community) -> Write:
    member = await funded(api, community, 120)
    return Write("/v1/holds", member.token, {"member_id": member.id, "minutes": 60, "description": "陪诊"}, 201)


async def _placed_hold(api: Api, community: Community) -> str:
    member = await funded(api, community, 120)
    response = await api.post("/v1/holds", member.token, {"member_id": member.id, "minutes": 60})
    assert response.status_code == 201, response.text
    hold_id: str = response.json()["id"]
    return hold_id


async def _capture(api: Api, community: Community) -> Write:
    hold_id = await _placed_hold(api, community)
    return Write(f"/v1/holds/{hold_id}/capture", api.admin_token, {"minutes": 45}, 201)


async def _release(api: Api, community: Community) -> Write:
    hold_id = await _placed_hold(api, community)
    return Write(f"/v1/holds/{hold_id}/release", api.admin_token, None, 200)


async def _reversal(api: Api, community: Community) -> Write:
    member = await api.member(community, "volunteer")
    credit = await api.credit(member, 60)
    assert credit.status_code == 201, credit.text
    return Write(f"/v1/transactions/{credit.json()['id']}/reversal", api.admin_token, {"reason": "记错了"}, 201)


WRITES: dict[str, Callable[[Api, Community], Awaitable[Write]]] = {
    "credit": _credit,
    "redemption": _redemption,
    "transfer": _transfer,
    "donation": _donation,
    "pool_grant": _pool_grant,
    "hold": _hold,
    "capture": _capture,
    "release": _release,
    "reversal": _reversal,
}


@pytest.mark.parametrize("operation", list(WRITES))
async def test_same_key_same_body_replays_and_moves_nothing(
    api: Api, owner: asyncpg.Connection, operation: str
) -> None:
    community = await api.community()
    write = await WRITES[operation](api, community)
    key = f"{operation}-{uuid.uuid4().hex}"
    before = await ledger_state(owner, community)
    first = await api.post(write.path, write.token, write.body, key=key)
    assert first.status_code == write.status, first.text
    assert not replayed(first)
    after_first = await ledger_state(owner, community)
    assert after_first != before

    for _ in range(2):
        again = await api.post(write.path, write.token, write.body, key=key)
        assert again.status_code == first.status_code, again.text
        assert again.headers["content-type"] == first.headers["content-type"]
        assert again.json() == first.json()
        assert replayed(again)
        assert await ledger_state(owner, community) == after_first


@pytest.mark.parametrize("operation", list(WRITES))
async def test_missing_key_is_refused_on_every_write(api: Api, owner: asyncpg.Connection, operation: str) -> None:
    community = await api.community()
    write = await WRITES[operation](api, community)
    before = await ledger_state(owner, community)
    response = await api.post(write.path, write.token, write.body, key=None)
    assert_problem(response, 400, "idempotency_key_required")
    assert await ledger_state(owner, community) == before
    # The same request with a key goes through, so the refusal was about the key alone.
    done = await api.post(write.path, write.token, write.body)
    assert done.status_code == write.status, done.text


async def test_same_key_different_body_is_refused(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    member = await api.member(community, "volunteer")
    key = uuid.uuid4().hex
    body = {"member_id": member.id, "minutes": 60, "service_date": "2026-11-01", "description": "陪聊"}
    first = await api.post("/v1/credits", api.admin_token, body, key=key)
    assert first.status_code == 201, first.text
    before = await ledger_state(owner, community)
    for changed in (
        dict(body, minutes=120),
        dict(body, description="送餐"),
        dict(body, service_date="2026-11-02"),
    ):
        response = await api.post("/v1/credits", api.admin_token, changed, key=key)
        assert_problem(response, 409, "idempotency_key_reused")
        assert not replayed(response)
    # The key names one request of the caller's, whatever the endpoint.
    other_endpoint = await api.post(
        "/v1/redemptions", api.admin_token, {"member_id": member.id, "minutes": 15}, key=key
    )
    assert_problem(other_endpoint, 409, "idempotency_key_reused")
    assert await ledger_state(owner, community) == before
    # The original request still replays.
    again = await api.post("/v1/credits", api.admin_token, body, key=key)
    assert again.status_code == 201
    assert again.json() == first.json()
    assert replayed(again)


async def test_same_key_on_another_path_target_is_refused(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    member = await api.member(community, "volunteer")
    first_credit = await api.credit(member, 60)
    second_credit = await api.credit(member, 60)
    key = uuid.uuid4().hex
    reversal = await api.post(
        f"/v1/transactions/{first_credit.json()['id']}/reversal", api.admin_token, {"reason": "x"}, key=key
    )
    assert reversal.status_code == 201, reversal.text
    before = await ledger_state(owner, community)
    other = await api.post(
        f"/v1/transactions/{second_credit.json()['id']}/reversal", api.admin_token, {"reason": "x"}, key=key
    )
    assert_problem(other, 409, "idempotency_key_reused")
    assert await ledger_state(owner, community) == before
    assert (await api.get(f"/v1/transactions/{second_credit.json()['id']}", api.admin_token)).json()[
        "reversed_by"
    ] is None


async def test_same_body_in_other_formatting_is_the_same_request(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    member = await api.member(community, "volunteer")
    key = uuid.uuid4().hex
    headers = {"Authorization": f"Bearer {api.admin_token}", "Idempotency-Key": key, "Content-Type": "application/json"}
    compact = json.dumps({"member_id": member.id, "minutes": 60, "service_date": "2026-11-01"}, separators=(",", ":"))
    spaced = json.dumps({"service_date": "2026-11-01", "minutes": 60, "member_id": member.id}, indent=2)
    first = await api.client.post("/v1/credits", headers=headers, content=compact.encode())
    assert first.status_code == 201, first.text
    after_first = await ledger_state(owner, community)
    second = await api.client.post("/v1/credits", headers=headers, content=spaced.encode())
    assert second.status_code == 201, second.text
    assert second.json() == first.json()
    assert replayed(second)
    assert await ledger_state(owner, community) == after_first


async def test_a_business_rule_failure_is_remembered(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    member = await api.member(community, "volunteer", "resident")
    key = uuid.uuid4().hex
    body = {"member_id": member.id, "minutes": 60, "description": "理发"}
    first = await api.post("/v1/redemptions", member.token, body, key=key)
    problem = assert_problem(first, 422, "insufficient_balance")
    assert not replayed(first)

    # The balance grows; the retry still gets the first answer and moves nothing.
    assert (await api.credit(member, 120)).status_code == 201
    before = await ledger_state(owner, community)
    retry = await api.post("/v1/redemptions", member.token, body, key=key)
    assert retry.status_code == 422
    assert retry.headers["content-type"].split(";")[0].strip() == PROBLEM_MEDIA_TYPE
    assert retry.json() == problem
    assert replayed(retry)
    assert await ledger_state(owner, community) == before
    assert await api.balance(member.account_id) == 120
    # A different body under that key is still a different request.
    reused = await api.post("/v1/redemptions", member.token, dict(body, minutes=30), key=key)
    assert_problem(reused, 409, "idempotency_key_reused")
    # A new key is a new request, and now it succeeds.
    fresh = await api.post("/v1/redemptions", member.token, body)
    assert fresh.status_code == 201, fresh.text
    assert await api.balance(member.account_id) == 60


async def test_a_not_found_refusal_is_not_remembered(api: Api) -> None:
    """404 says the id is outside the caller's reach, not what a rule decided: a retry asks again."""
    community = await api.community()
    await api.member(community, "volunteer")
    key = uuid.uuid4().hex
    body = {"member_id": str(uuid.uuid4()), "minutes": 60, "service_date": "2026-11-01"}
    first = await api.post("/v1/credits", api.admin_token, body, key=key)
    assert_problem(first, 404, "not_found")
    retry = await api.post("/v1/credits", api.admin_token, body, key=key)
    assert_problem(retry, 404, "not_found")
    assert not replayed(retry)


async def test_keys_are_scoped_to_the_caller(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    member = await api.member(community, "volunteer")
    first_coordinator = await api.member(community, "coordinator")
    second_coordinator = await api.member(community, "coordinator")
    key = "shared-" + uuid.uuid4().hex
    body = {"member_id": member.id, "minutes": 60, "service_date": "2026-11-01"}
    answers = []
    for token in (api.admin_token, first_coordinator.token, second_coordinator.token):
        response = await api.post("/v1/credits", token, body, key=key)
        assert response.status_code == 201, response.text
        assert not replayed(response)
        answers.append(response.json())
    assert len({a["id"] for a in answers}) == 3
    assert len({a["created_by"] for a in answers}) == 3
    assert await api.balance(member.account_id) == 180
    # Each caller's own retry replays its own answer.
    retry = await api.post("/v1/credits", first_coordinator.token, body, key=key)
    assert replayed(retry)
    assert retry.json() == answers[1]
    assert await api.balance(member.account_id) == 180
    # And one caller's different body under that key does not disturb the others.
    reused = await api.post("/v1/credits", second_coordinator.token, dict(body, minutes=15), key=key)
    assert_problem(reused, 409, "idempotency_key_reused")
    count = await owner.fetchval("select count(*) from transactions where community_id = $1", uuid.UUID(community.id))
    assert count == 3


async def test_key_of_200_characters_is_accepted(api: Api) -> None:
    community = await api.community()
    member = await api.member(community, "volunteer")
    key = ("k-" + uuid.uuid4().hex + "~!#$%&'*+-.^_`|") * 10
    key = key[:200]
    body = {"member_id": member.id, "minutes": 60, "service_date": "2026-11-01"}
    first = await api.post("/v1/credits", api.admin_token, body, key=key)
    assert first.status_code == 201, first.text
    again = await api.post("/v1/credits", api.admin_token, body, key=key)
    assert again.status_code == 201
    assert replayed(again)
    assert await api.balance(member.account_id) == 60
    one = await api.post("/v1/credits", api.admin_token, body, key="x")
    assert one.status_code == 201, one.text


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(b"k" * 201, id="201-chars"),
        pytest.param(b"", id="empty"),
        pytest.param("ключ-идемпотентности".encode(), id="non-ascii-utf8"),
        pytest.param("幂等键".encode(), id="cjk"),
        pytest.param(b"caf\xe9", id="latin-1-byte"),
        pytest.param(b"a\x00b", id="nul"),
        pytest.param(b"a\x01b", id="control"),
        pytest.param(b"a\tb", id="tab"),
        pytest.param(b"a\x7fb", id="del"),
    ],
)
async def test_bad_keys_are_refused(api: Api, owner: asyncpg.Connection, key: bytes) -> None:
    community = await api.community()
    member = await api.member(community, "volunteer")
    before = await ledger_state(owner, community)
    response = await api.client.post(
        "/v1/credits",
        headers=[("Authorization", f"Bearer {api.admin_token}"), ("Idempotency-Key", key)],
        json={"member_id": member.id, "minutes": 60, "service_date": "2026-11-01"},
    )
    body = assert_problem(response, 400, "invalid_request")
    assert any("Idempotency-Key" in e["field"] for e in body.get("errors") or []), body
    assert await ledger_state(owner, community) == before


@dataclass
class RawResponse:
    status_code: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def _asgi_post(app: Any, path: str, headers: dict[str, str], body: bytes) -> RawResponse:
    """One POST straight into the ASGI app, in the app's own event loop."""
    events = iter([{"type": "http.request", "body": body, "more_body": False}])
    sent: list[dict[str, Any]] = []

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
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver.local", 80),
    }
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    return RawResponse(
        status_code=start["status"],
        headers={k.decode().lower(): v.decode() for k, v in start["headers"]},
        body=b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"),
    )


async def concurrently(api: Api, n: int, path: str, token: str, key: str, body: Any) -> list[RawResponse]:
    """Send `n` identical POSTs at once.

    The test client hands each request to the app's event loop (a portal thread) and waits for it,
    so `asyncio.gather` over the client would run them one after another; here they are gathered
    inside the app's loop, so they really overlap at the database.
    """
    headers = {
        "authorization": f"Bearer {token}",
        "idempotency-key": key,
        "content-type": "application/json",
    }
    payload = json.dumps(body).encode()

    async def burst() -> list[RawResponse]:
        return list(await asyncio.gather(*(_asgi_post(api.client.app, path, headers, payload) for _ in range(n))))

    responses: list[RawResponse] = await asyncio.to_thread(api.client.blocking_portal.call, burst)
    return responses


async def test_concurrent_requests_with_one_key_have_one_effect(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    member = await api.member(community, "volunteer")
    key = "race-" + uuid.uuid4().hex
    body = {"member_id": member.id, "minutes": 60, "service_date": "2026-11-01"}
    responses = await concurrently(api, 10, "/v1/credits", api.admin_token, key, body)
    assert [r.status_code for r in responses] == [201] * 10, [r.body for r in responses]
    assert len({r.body for r in responses}) == 1
    assert sum(not replayed(r) for r in responses) == 1
    assert await api.balance(member.account_id) == 60
    count = await owner.fetchval("select count(*) from transactions where community_id = $1", uuid.UUID(community.id))
    assert count == 1
    # A later retry answers the same.
    retry = await api.post("/v1/credits", api.admin_token, body, key=key)
    assert retry.json() == responses[0].json()
    assert replayed(retry)


async def test_concurrent_failures_with_one_key_answer_alike(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    member = await funded(api, community, 30)
    key = "race-fail-" + uuid.uuid4().hex
    before = await ledger_state(owner, community)
    responses = await concurrently(
        api, 10, "/v1/redemptions", member.token, key, {"member_id": member.id, "minutes": 60}
    )
    problems = [assert_problem(r, 422, "insufficient_balance") for r in responses]
    assert all(p == problems[0] for p in problems)
    assert sum(not replayed(r) for r in responses) == 1
    assert await ledger_state(owner, community) == before


async def test_concurrent_captures_of_one_hold_with_one_key(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    hold_id = await _placed_hold(api, community)
    key = "race-capture-" + uuid.uuid4().hex
    responses = await concurrently(api, 10, f"/v1/holds/{hold_id}/capture", api.admin_token, key, {"minutes": 30})
    assert [r.status_code for r in responses] == [201] * 10, [r.body for r in responses]
    assert len({r.body for r in responses}) == 1
    assert sum(not replayed(r) for r in responses) == 1
    count = await owner.fetchval(
        "select count(*) from transactions where hold_id = $1 and kind = 'hold_capture'", uuid.UUID(hold_id)
    )
    assert count == 1
    assert await api.balance(community.accounts["services"]) == 30
