"""Every problem in the caller's language: Chinese for `Accept-Language: zh-CN` (or `zh`), else English.

Every stable code the API can produce today is provoked through the real API, once in Chinese and
once in English, by the same refused request: `title`, `detail` and `errors[].message` change
language, nothing else does (`code`, `type`, `status`, field paths, extra members). Codes of
features not built yet are listed in UNBUILT, and a test fails as soon as one of them is raised
anywhere, so that it gets its case here. A remembered problem is stored in English and replayed in
the language of the retry.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import msgspec
import pytest
from litestar import Litestar, get
from litestar.testing import AsyncTestClient

from tests.client import Api, Community, Member
from tests.language import has_no_chinese, reads_as_chinese
from tests.sources import used_codes
from timebank.app import create_app
from timebank.config import Settings
from timebank.db import Database
from timebank.errors import CODES, PROBLEM_MEDIA_TYPE
from timebank.http.context import hash_token
from timebank.http.problems import handle_exception

ZH = {"Accept-Language": "zh-CN"}
EN = {"Accept-Language": "en"}

# Codes of the 2026-12 additions whose features are not built yet. When one is raised somewhere,
# test_unbuilt_codes_are_not_raised_yet fails: move it from here to PRODUCERS, with its request.
UNBUILT: frozenset[str] = frozenset()

# Codes the HTTP API cannot be made to answer on demand; each is rendered through the same problem
# handler by test_codes_not_reached_through_the_api instead.
NOT_VIA_API = {
    "conflict": "raised only at start-up, when TIMEBANK_ADMIN_TOKEN is already a member's token",
    "conflict_retry": "needs concurrent transactions that keep colliding",
    "internal_error": "needs a fault in the service",
}

# Sends the refused request with these extra headers (values are str, or bytes to send them raw).
Send = Callable[[dict[str, Any]], Awaitable[Any]]


@dataclass
class Env:
    api: Api
    settings: Settings
    database: str
    admin_token: str


# --- how to make each code ----------------------------------------------------------------------


def credit_body(member: Member, minutes: Any = 60) -> dict[str, Any]:
    return {"member_id": member.id, "minutes": minutes, "service_date": "2026-11-01", "description": "陪聊"}


async def funded(api: Api, community: Community, minutes: int, *roles: str) -> Member:
    member = await api.member(community, *(roles or ("volunteer", "resident")))
    response = await api.credit(member, minutes)
    assert response.status_code == 201, response.text
    return member


async def get_with(api: Api, path: str, token: str | None, headers: dict[str, Any]) -> Any:
    return await api.client.get(path, headers={**api.auth(token), **headers})


@contextlib.asynccontextmanager
async def app_with(env: Env, **settings: Any) -> AsyncIterator[Api]:
    """The service with some settings changed, on the session's database."""
    app = create_app(msgspec.structs.replace(env.settings, **settings), env.database)
    async with AsyncTestClient(app=app, raise_server_exceptions=False) as client:
        yield Api(client, env.admin_token)


Producer = Callable[[Env], contextlib.AbstractAsyncContextManager[Send]]
PRODUCERS: dict[str, Producer] = {}


def produces(code: str) -> Callable[[Callable[[Env], AsyncIterator[Send]]], Callable[[Env], AsyncIterator[Send]]]:
    """Register a producer: it prepares the data, then yields a function that sends the refused request."""

    def register(function: Callable[[Env], AsyncIterator[Send]]) -> Callable[[Env], AsyncIterator[Send]]:
        PRODUCERS[code] = contextlib.asynccontextmanager(function)
        return function

    return register


@produces("invalid_request")
async def _invalid_request(env: Env) -> AsyncIterator[Send]:
    member = await env.api.member(await env.api.community(), "volunteer")
    yield lambda h: env.api.post("/v1/credits", env.api.admin_token, credit_body(member, "60") | {"x": 1}, **h)


@produces("idempotency_key_required")
async def _idempotency_key_required(env: Env) -> AsyncIterator[Send]:
    member = await env.api.member(await env.api.community(), "volunteer")
    yield lambda h: env.api.post("/v1/credits", env.api.admin_token, credit_body(member), key=None, **h)


@produces("unauthenticated")
async def _unauthenticated(env: Env) -> AsyncIterator[Send]:
    yield lambda h: get_with(env.api, "/v1/me", None, h)


@produces("forbidden")
async def _forbidden(env: Env) -> AsyncIterator[Send]:
    volunteer = await env.api.member(await env.api.community(), "volunteer")
    yield lambda h: env.api.post("/v1/credits", volunteer.token, credit_body(volunteer), **h)


@produces("not_found")
async def _not_found(env: Env) -> AsyncIterator[Send]:
    yield lambda h: env.api.post(
        "/v1/credits", env.api.admin_token, credit_body(Member(str(uuid.uuid4()), "", "", "")), **h
    )


@produces("method_not_allowed")
async def _method_not_allowed(env: Env) -> AsyncIterator[Send]:
    yield lambda h: env.api.client.delete("/v1/credits", headers={**env.api.auth(env.api.admin_token), **h})


@produces("request_too_large")
async def _request_too_large(env: Env) -> AsyncIterator[Send]:
    async with app_with(env, max_body_bytes=200) as api:
        member = await api.member(await api.community(), "volunteer")
        yield lambda h: api.post("/v1/credits", api.admin_token, credit_body(member) | {"description": "x" * 200}, **h)


@produces("unsupported_media_type")
async def _unsupported_media_type(env: Env) -> AsyncIterator[Send]:
    member = await env.api.member(await env.api.community(), "volunteer")
    content = msgspec.json.encode(credit_body(member))

    def send(h: dict[str, Any]) -> Awaitable[Any]:
        headers = {**env.api.auth(env.api.admin_token), "Idempotency-Key": uuid.uuid4().hex, **h}
        return env.api.client.post("/v1/credits", headers=headers | {"Content-Type": "text/plain"}, content=content)

    yield send


@produces("not_yet_logged")
async def _not_yet_logged(env: Env) -> AsyncIterator[Send]:
    # The session's service signs no checkpoint (it has no log key), so no transaction is provable yet.
    member = await env.api.member(await env.api.community(), "volunteer")
    response = await env.api.credit(member, 60)
    assert response.status_code == 201, response.text
    path = f"/v1/transactions/{response.json()['id']}/proof"
    yield lambda h: get_with(env.api, path, env.api.admin_token, h)


@produces("invalid_tree_size")
async def _invalid_tree_size(env: Env) -> AsyncIterator[Send]:
    yield lambda h: get_with(env.api, "/v1/log/consistency?first=2&second=1", None, h)


@produces("community_exists")
async def _community_exists(env: Env) -> AsyncIterator[Send]:
    community = await env.api.community()
    body = {"slug": community.slug, "name": "另一个社区"}
    yield lambda h: env.api.post("/v1/communities", env.api.admin_token, body, key=None, **h)


@produces("member_exists")
async def _member_exists(env: Env) -> AsyncIterator[Send]:
    community = await env.api.community()
    path = f"/v1/communities/{community.slug}/members"
    body = {"display_name": "周彦芳", "roles": ["resident"], "grid": "3", "phone": "138" + str(uuid.uuid4().int)[:8]}
    assert (await env.api.post(path, env.api.admin_token, body, key=None)).status_code == 201
    yield lambda h: env.api.post(path, env.api.admin_token, body | {"display_name": "周秀英"}, key=None, **h)


@produces("unknown_time_zone")
async def _unknown_time_zone(env: Env) -> AsyncIterator[Send]:
    def send(h: dict[str, Any]) -> Awaitable[Any]:
        body = {"slug": "c-" + uuid.uuid4().hex[:12], "name": "火星社区", "policy": {"time_zone": "Mars/Olympus"}}
        return env.api.post("/v1/communities", env.api.admin_token, body, key=None, **h)

    yield send


@produces("service_date_in_future")
async def _service_date_in_future(env: Env) -> AsyncIterator[Send]:
    member = await env.api.member(await env.api.community(), "volunteer")
    body = credit_body(member) | {"service_date": "2999-01-01"}
    yield lambda h: env.api.post("/v1/credits", env.api.admin_token, body, **h)


def _request_body(member: Member, **changes: Any) -> dict[str, Any]:
    scheduled_at = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).isoformat()
    body = {"member_id": member.id, "service_type": "meals", "minutes": 60, "scheduled_at": scheduled_at,
            "funding": "community"}  # fmt: skip
    return body | changes


@produces("service_type_exists")
async def _service_type_exists(env: Env) -> AsyncIterator[Send]:
    community = await env.api.community()
    body = {"code": "meals", "name": "助餐", "default_minutes": 60}
    yield lambda h: env.api.post(f"/v1/communities/{community.slug}/service-types", env.api.admin_token, body, **h)


@produces("unknown_service_type")
async def _unknown_service_type(env: Env) -> AsyncIterator[Send]:
    member = await env.api.member(await env.api.community(), "resident")
    body = _request_body(member, service_type="flying")
    yield lambda h: env.api.post("/v1/service-requests", env.api.admin_token, body, **h)


@produces("invalid_schedule")
async def _invalid_schedule(env: Env) -> AsyncIterator[Send]:
    member = await env.api.member(await env.api.community(), "resident")
    body = _request_body(member, scheduled_at="2020-01-01T08:00:00Z")
    yield lambda h: env.api.post("/v1/service-requests", env.api.admin_token, body, **h)


@produces("invalid_transition")
async def _invalid_transition(env: Env) -> AsyncIterator[Send]:
    member = await env.api.member(await env.api.community(), "resident")
    created = await env.api.post("/v1/service-requests", env.api.admin_token, _request_body(member))
    assert created.status_code == 201, created.text
    path = f"/v1/service-requests/{created.json()['id']}/confirm"
    yield lambda h: env.api.post(path, env.api.admin_token, {"rating": 5}, **h)


@produces("hold_belongs_to_request")
async def _hold_belongs_to_request(env: Env) -> AsyncIterator[Send]:
    community = await env.api.community()
    member = await funded(env.api, community, 60)
    created = await env.api.post("/v1/service-requests", env.api.admin_token, _request_body(member, funding="own"))
    assert created.status_code == 201, created.text
    path = f"/v1/holds/{created.json()['hold_id']}/release"
    yield lambda h: env.api.post(path, env.api.admin_token, {}, **h)


@produces("not_eligible")
async def _not_eligible(env: Env) -> AsyncIterator[Send]:
    community = await env.api.community(volunteer_min_age=18)
    member = await env.api.member(community, "volunteer", birth_date="2010-01-01")
    yield lambda h: env.api.post("/v1/credits", env.api.admin_token, credit_body(member), **h)


@produces("not_a_relative")
async def _not_a_relative(env: Env) -> AsyncIterator[Send]:
    community = await env.api.community(gift_scope="relatives")
    giver, other = await env.api.member(community, "volunteer"), await env.api.member(community, "resident")
    assert (await env.api.credit(giver, 60)).status_code == 201
    body = {"from_member_id": giver.id, "to_member_id": other.id, "minutes": 15}
    yield lambda h: env.api.post("/v1/transfers", giver.token, body, **h)


@produces("idempotency_key_reused")
async def _idempotency_key_reused(env: Env) -> AsyncIterator[Send]:
    member = await env.api.member(await env.api.community(), "volunteer")
    key = uuid.uuid4().hex
    assert (await env.api.post("/v1/credits", env.api.admin_token, credit_body(member), key=key)).status_code == 201
    yield lambda h: env.api.post("/v1/credits", env.api.admin_token, credit_body(member, 120), key=key, **h)


@produces("already_reversed")
async def _already_reversed(env: Env) -> AsyncIterator[Send]:
    member = await env.api.member(await env.api.community(), "volunteer")
    credit = await env.api.credit(member, 60)
    path = f"/v1/transactions/{credit.json()['id']}/reversal"
    assert (await env.api.post(path, env.api.admin_token, {"reason": "记错了"})).status_code == 201
    yield lambda h: env.api.post(path, env.api.admin_token, {"reason": "记错了"}, **h)


@produces("cannot_reverse_reversal")
async def _cannot_reverse_reversal(env: Env) -> AsyncIterator[Send]:
    member = await env.api.member(await env.api.community(), "volunteer")
    credit = await env.api.credit(member, 60)
    reversal = await env.api.post(
        f"/v1/transactions/{credit.json()['id']}/reversal", env.api.admin_token, {"reason": "x"}
    )
    path = f"/v1/transactions/{reversal.json()['id']}/reversal"
    yield lambda h: env.api.post(path, env.api.admin_token, {"reason": "撤销"}, **h)


@produces("hold_not_pending")
async def _hold_not_pending(env: Env) -> AsyncIterator[Send]:
    resident = await funded(env.api, await env.api.community(), 120)
    held = await env.api.post("/v1/holds", resident.token, {"member_id": resident.id, "minutes": 60})
    path = f"/v1/holds/{held.json()['id']}/release"
    assert (await env.api.post(path, env.api.admin_token)).status_code == 200
    yield lambda h: env.api.post(path, env.api.admin_token, **h)


@produces("amount_not_multiple_of_unit")
async def _amount_not_multiple_of_unit(env: Env) -> AsyncIterator[Send]:
    member = await env.api.member(await env.api.community(unit_minutes=15), "volunteer")
    yield lambda h: env.api.post("/v1/credits", env.api.admin_token, credit_body(member, 20), **h)


@produces("amount_out_of_range")
async def _amount_out_of_range(env: Env) -> AsyncIterator[Send]:
    member = await env.api.member(await env.api.community(max_transaction_minutes=120), "volunteer")
    yield lambda h: env.api.post("/v1/credits", env.api.admin_token, credit_body(member, 135), **h)


@produces("insufficient_balance")
async def _insufficient_balance(env: Env) -> AsyncIterator[Send]:
    resident = await funded(env.api, await env.api.community(), 30)
    yield lambda h: env.api.post("/v1/redemptions", resident.token, {"member_id": resident.id, "minutes": 60}, **h)


@produces("balance_cap_exceeded")
async def _balance_cap_exceeded(env: Env) -> AsyncIterator[Send]:
    member = await funded(env.api, await env.api.community(max_balance_minutes=120), 120, "volunteer")
    yield lambda h: env.api.post("/v1/credits", env.api.admin_token, credit_body(member, 15), **h)


@produces("not_a_volunteer")
async def _not_a_volunteer(env: Env) -> AsyncIterator[Send]:
    resident = await env.api.member(await env.api.community(), "resident")
    yield lambda h: env.api.post("/v1/credits", env.api.admin_token, credit_body(resident), **h)


@produces("same_account")
async def _same_account(env: Env) -> AsyncIterator[Send]:
    member = await funded(env.api, await env.api.community(), 60)
    body = {"from_member_id": member.id, "to_member_id": member.id, "minutes": 30}
    yield lambda h: env.api.post("/v1/transfers", member.token, body, **h)


@produces("cross_community_not_allowed")
async def _cross_community_not_allowed(env: Env) -> AsyncIterator[Send]:
    member = await funded(env.api, await env.api.community(), 60)
    stranger = await env.api.member(await env.api.community(), "resident")
    body = {"from_member_id": member.id, "to_member_id": stranger.id, "minutes": 30}
    yield lambda h: env.api.post("/v1/transfers", member.token, body, **h)


@produces("capture_exceeds_hold")
async def _capture_exceeds_hold(env: Env) -> AsyncIterator[Send]:
    resident = await funded(env.api, await env.api.community(), 120)
    held = await env.api.post("/v1/holds", resident.token, {"member_id": resident.id, "minutes": 60})
    path = f"/v1/holds/{held.json()['id']}/capture"
    yield lambda h: env.api.post(path, env.api.admin_token, {"minutes": 75}, **h)


@produces("invalid_date_range")
async def _invalid_date_range(env: Env) -> AsyncIterator[Send]:
    member = await env.api.member(await env.api.community(), "volunteer")
    path = f"/v1/accounts/{member.account_id}/entries?from=2026-12-01T00:00:00Z&to=2026-11-01T00:00:00Z"
    yield lambda h: get_with(env.api, path, env.api.admin_token, h)


@produces("invalid_expiry")
async def _invalid_expiry(env: Env) -> AsyncIterator[Send]:
    resident = await funded(env.api, await env.api.community(), 120)
    body = {"member_id": resident.id, "minutes": 30, "expires_at": "2020-01-01T00:00:00Z"}
    yield lambda h: env.api.post("/v1/holds", resident.token, body, **h)


@produces("invalid_transfer_target")
async def _invalid_transfer_target(env: Env) -> AsyncIterator[Send]:
    community = await env.api.community()
    member = await funded(env.api, community, 60)
    other = await env.api.member(community, "resident")
    body = {"from_member_id": member.id, "to_member_id": other.id, "to_pool": True, "minutes": 30}
    yield lambda h: env.api.post("/v1/transfers", member.token, body, **h)


@produces("invalid_cursor")
async def _invalid_cursor(env: Env) -> AsyncIterator[Send]:
    # The documented shape, but not a cursor this service issued ("v2:1").
    yield lambda h: get_with(env.api, "/v1/communities?cursor=djI6MQ", env.api.admin_token, h)


@produces("too_many_requests")
async def _too_many_requests(env: Env) -> AsyncIterator[Send]:
    async with app_with(env, auth_failures_per_minute=1) as api:
        assert (await api.get("/v1/me", "tb_guess")).status_code == 401
        yield lambda h: get_with(api, "/v1/me", "tb_guess_again", h)


@produces("too_many_attempts")
async def _too_many_attempts(env: Env) -> AsyncIterator[Send]:
    member = await env.api.member(await env.api.community(), "resident")
    path = f"/v1/members/{member.id}/pin"
    assert (await env.api.post(path, env.api.admin_token, {"pin": "123456"})).status_code == 204
    for _ in range(5):
        await env.api.post(path, member.token, {"pin": "654321", "current_pin": "000000"})
    yield lambda h: env.api.post(path, member.token, {"pin": "654321", "current_pin": "123456"}, **h)


@produces("relative_exists")
async def _relative_exists(env: Env) -> AsyncIterator[Send]:
    community = await env.api.community()
    son, mother = await env.api.member(community, "volunteer"), await env.api.member(community, "resident")
    body = {"relative_member_id": mother.id, "relation": "parent"}
    assert (await env.api.post(f"/v1/members/{son.id}/relatives", env.api.admin_token, body)).status_code == 201
    yield lambda h: env.api.post(f"/v1/members/{son.id}/relatives", env.api.admin_token, body, **h)


@produces("not_a_member")
async def _not_a_member(env: Env) -> AsyncIterator[Send]:
    community = await env.api.community()
    body = {"community": community.slug, "service_date": "2026-11-01", "credits": [
        {"member_id": str(uuid.uuid4()), "minutes": 15}
    ]}  # fmt: skip
    yield lambda h: env.api.post("/v1/credit-batches", env.api.admin_token, body, **h)


@produces("duplicate_member")
async def _duplicate_member(env: Env) -> AsyncIterator[Send]:
    community = await env.api.community()
    member = await env.api.member(community, "volunteer")
    item = {"member_id": member.id, "minutes": 15}
    body = {"community": community.slug, "service_date": "2026-11-01", "credits": [item, item]}
    yield lambda h: env.api.post("/v1/credit-batches", env.api.admin_token, body, **h)


@produces("unavailable")
async def _unavailable(env: Env) -> AsyncIterator[Send]:
    async with app_with(env) as api:
        api.client.app.state.draining = True
        yield lambda h: get_with(api, "/ready", None, h)


# --- the walk -------------------------------------------------------------------------------------


@pytest.fixture
def env(api: Api, settings: Settings, database: str, admin_token: str) -> Env:
    return Env(api, settings, database, admin_token)


LANGUAGE_MEMBERS = ("title", "detail", "request_id", "errors")


def assert_problem_in(response: Any, language: str, code: str) -> dict[str, Any]:
    """A problem with `code`, every text of it in `language`, announced as such."""
    assert response.headers["content-type"].split(";")[0] == PROBLEM_MEDIA_TYPE, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert body["status"] == response.status_code == CODES[code].status
    assert "accept-language" in response.headers["vary"].lower()
    texts = [body["detail"], *(e["message"] for e in body.get("errors") or [])]
    if language == "zh":
        assert response.headers["content-language"] == "zh-CN"
        assert body["title"] == CODES[code].title_zh
        for text in texts:
            assert reads_as_chinese(text), (code, text)
            assert "原文" not in text, (code, text)  # the catalog's fallback for a message it lacks
    else:
        assert response.headers["content-language"] == "en"
        assert body["title"] == CODES[code].title
        for text in [body["title"], *texts]:
            assert has_no_chinese(text), (code, text)
    return body


def test_every_code_is_walked() -> None:
    walked = set(PRODUCERS)
    assert not walked & UNBUILT
    assert not walked & set(NOT_VIA_API)
    assert not UNBUILT & set(NOT_VIA_API)
    assert walked | UNBUILT | set(NOT_VIA_API) == set(CODES), (
        "every code in CODES needs a producer here, or a place in UNBUILT or NOT_VIA_API: "
        f"{sorted(set(CODES) - walked - UNBUILT - set(NOT_VIA_API))}"
    )


def test_unbuilt_codes_are_not_raised_yet() -> None:
    used = used_codes()
    raised = {code: used[code] for code in UNBUILT if code in used}
    assert not raised, (
        f"these codes are raised now; give each a producer in this file and take it out of UNBUILT: {raised}"
    )
    unraised = sorted(code for code in set(CODES) - UNBUILT if code not in used)
    assert not unraised, f"nothing raises these codes; list them in UNBUILT: {unraised}"


@pytest.mark.parametrize("code", sorted(PRODUCERS))
async def test_each_code_in_chinese_and_in_english(env: Env, code: str) -> None:
    async with PRODUCERS[code](env) as send:
        chinese = assert_problem_in(await send(ZH), "zh", code)
        english = assert_problem_in(await send(EN), "en", code)
    assert chinese["title"] != english["title"]
    assert chinese["detail"] != english["detail"]
    # Everything but the words is the same: code, type, status, extra members, field paths.
    assert {k: v for k, v in chinese.items() if k not in LANGUAGE_MEMBERS} == {
        k: v for k, v in english.items() if k not in LANGUAGE_MEMBERS
    }
    assert [e["field"] for e in chinese.get("errors") or []] == [e["field"] for e in english.get("errors") or []]


async def test_without_accept_language_problems_are_english(env: Env) -> None:
    for code in ("invalid_request", "insufficient_balance", "not_found"):
        async with PRODUCERS[code](env) as send:
            absent = assert_problem_in(await send({}), "en", code)
            english = assert_problem_in(await send(EN), "en", code)
        assert {k: v for k, v in absent.items() if k != "request_id"} == {
            k: v for k, v in english.items() if k != "request_id"
        }


@pytest.mark.parametrize(
    "header",
    ["zh", "zh-CN", "zh-Hans", "zh-TW", "zh-CN,zh;q=0.9,en;q=0.8", "en;q=0.5, zh;q=0.6", "fr, zh;q=0.1"],
)
async def test_chinese_ranges_read_chinese(env: Env, header: str) -> None:
    async with PRODUCERS["insufficient_balance"](env) as send:
        body = assert_problem_in(await send({"Accept-Language": header}), "zh", "insufficient_balance")
    assert body["detail"].startswith("可用余额不足：账户 ")
    assert "可用 30 分钟，本次需要 60 分钟" in body["detail"]
    assert body["account_id"] in body["detail"]


@pytest.mark.parametrize(
    "header",
    ["en-US", "*", "fr", "", "zh;q=0", "zh;q=2", "zh_CN", ";;;,,,=", "中文".encode(), b"zh\xff", "zh-" + "x" * 2000],
)
async def test_other_or_malformed_headers_read_english(env: Env, header: str | bytes) -> None:
    async with PRODUCERS["invalid_request"](env) as send:
        assert_problem_in(await send({"Accept-Language": header}), "en", "invalid_request")


async def test_errors_before_routing_are_localized(env: Env) -> None:
    """Unknown paths, wrong methods and ids that are not ids never reach a route; they read Chinese too."""
    for path in ("/v1/nowhere", "/v1/accounts/not-a-uuid", "/nowhere"):
        body = assert_problem_in(await get_with(env.api, path, env.admin_token, ZH), "zh", "not_found")
        assert body["detail"] == "没有这个地址，请检查网址是否正确。"
    response = await env.api.client.put("/v1/credits", headers=ZH, json={})
    assert assert_problem_in(response, "zh", "method_not_allowed")["detail"] == "这个地址不支持这种请求方法。"


async def test_validation_details_name_each_field_in_chinese(env: Env) -> None:
    async with PRODUCERS["invalid_request"](env) as send:
        body = assert_problem_in(await send(ZH), "zh", "invalid_request")
    assert body["detail"] == "字段 $.minutes：类型不对：应为整数，收到的是文字。"
    assert body["errors"] == [{"field": "$.minutes", "message": "类型不对：应为整数，收到的是文字"}]
    community = await env.api.community()
    page = await get_with(env.api, f"/v1/communities/{community.slug}/transactions?limit=0", env.admin_token, ZH)
    body = assert_problem_in(page, "zh", "invalid_request")
    assert body["errors"] == [{"field": "$.limit", "message": "应为不小于 1 的整数"}]


# --- replays --------------------------------------------------------------------------------------


async def test_a_remembered_problem_replays_in_the_language_of_the_retry(env: Env, owner: asyncpg.Connection) -> None:
    resident = await funded(env.api, await env.api.community(), 30)
    body = {"member_id": resident.id, "minutes": 60}
    key = uuid.uuid4().hex

    first = await env.api.post("/v1/redemptions", resident.token, body, key=key, **EN)
    english = assert_problem_in(first, "en", "insufficient_balance")
    assert "idempotent-replayed" not in first.headers
    # Remembered in English, whatever language is asked for later.
    stored = await owner.fetchval(
        "select response->>'detail' from idempotency_keys where key = $1 and principal_id ="
        " (select principal_id from tokens where token_hash = $2)",
        key,
        hash_token(resident.token),
    )
    assert stored == english["detail"]

    in_chinese = await env.api.post("/v1/redemptions", resident.token, body, key=key, **ZH)
    assert in_chinese.headers["idempotent-replayed"] == "true"
    chinese = assert_problem_in(in_chinese, "zh", "insufficient_balance")
    assert {k: v for k, v in chinese.items() if k not in ("title", "detail")} == {
        k: v for k, v in english.items() if k not in ("title", "detail")
    }
    # Same language, same bytes: in English as the first answer was, in Chinese as the first replay.
    again_english = await env.api.post("/v1/redemptions", resident.token, body, key=key, **EN)
    assert again_english.content == first.content
    assert again_english.headers["content-language"] == "en"
    again_chinese = await env.api.post("/v1/redemptions", resident.token, body, key=key, **ZH)
    assert again_chinese.content == in_chinese.content


async def test_a_problem_first_answered_in_chinese_replays_identically(env: Env) -> None:
    resident = await funded(env.api, await env.api.community(), 30)
    body = {"member_id": resident.id, "minutes": 60}
    key = uuid.uuid4().hex
    first = await env.api.post("/v1/redemptions", resident.token, body, key=key, **ZH)
    assert_problem_in(first, "zh", "insufficient_balance")
    replay = await env.api.post("/v1/redemptions", resident.token, body, key=key, **ZH)
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == first.content
    english = await env.api.post("/v1/redemptions", resident.token, body, key=key, **EN)
    assert_problem_in(english, "en", "insufficient_balance")
    assert english.json()["request_id"] == first.json()["request_id"]


# --- codes the API cannot be made to answer -------------------------------------------------------


async def test_codes_not_reached_through_the_api(settings: Settings, database: str, owner: asyncpg.Connection) -> None:
    """The same problem handler renders them; their messages come from where they are really raised."""
    member_token = "tb_member_" + uuid.uuid4().hex
    await owner.execute("select create_principal_token('auditor', null, $1, 'test')", hash_token(member_token))

    # The routes run in the test client's own event loop: each opens its connections there.
    @get("/conflict")
    async def conflict() -> None:
        # What start-up meets when TIMEBANK_ADMIN_TOKEN is already the token of another principal.
        conn = await asyncpg.connect(database, server_settings={"search_path": "timebank"})
        try:
            await conn.execute("select ensure_admin_token($1, 'test')", hash_token(member_token))
        finally:
            await conn.close()

    @get("/conflict-retry")
    async def conflict_retry() -> None:
        async def collide(_: Any) -> None:
            raise asyncpg.DeadlockDetectedError("deadlock detected")

        db = await Database.connect(msgspec.structs.replace(settings, conflict_retries=0), database)
        try:
            await db.run(collide)
        finally:
            await db.close()

    @get("/internal-error")
    async def internal_error() -> None:
        raise RuntimeError("a fault in the service")

    app = Litestar(
        route_handlers=[conflict, conflict_retry, internal_error],
        exception_handlers={Exception: handle_exception},
        logging_config=None,
    )
    async with AsyncTestClient(app=app, raise_server_exceptions=False) as client:
        for code in NOT_VIA_API:
            path = "/" + code.replace("_", "-")
            chinese = assert_problem_in(await client.get(path, headers=ZH), "zh", code)
            english = assert_problem_in(await client.get(path, headers=EN), "en", code)
            assert chinese["code"] == english["code"] == code
