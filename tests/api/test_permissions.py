"""The role matrix, tested from the outside: every endpoint × every kind of caller.

API.md's Roles table and each endpoint's "(admin, coordinator)" note decide who may do what. Each row of
MATRIX below is one endpoint; each column one kind of caller; each cell the exact status expected. Every
cell becomes its own test, which also checks that:

- every error is `application/problem+json` with `code`, `status`, `title`, `type` and `detail`;
- a refused request (401/403/404) changed nothing: balances, holds, members, tokens, policies;
- every 401/403 left exactly one `request.denied` audit event under the request's `X-Request-ID`.

The callers share one module-wide world (two communities and their members, made through the API), so
the matrix stays fast; a row that writes acts on hours or a hold made just for it, so rows do not depend
on each other or on their order.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from tests.client import Api, Community, Member
from tests.eventually import eventually
from tests.passbook.tools import require_tools

PROBLEM_FIELDS = ("type", "title", "status", "detail", "code")
CODE_OF_STATUS = {401: "unauthenticated", 403: "forbidden", 404: "not_found"}
POLICY = {
    "unit_minutes": 15,
    "max_transaction_minutes": 1440,
    "max_balance_minutes": 90000,
    "overdraft_minutes": 0,
    "time_zone": "Asia/Shanghai",
    "volunteer_min_age": None,
    "redeem_min_age": None,
    "gift_scope": "community",
    "pool_requires_eligibility": False,
}


@dataclass(frozen=True)
class Call:
    """One request to make, and what a successful answer must contain."""

    method: str
    path: str
    body: Any = None
    params: dict[str, str] | None = None
    moves_hours: bool = False  # sends an Idempotency-Key
    expect: dict[str, Any] = field(default_factory=dict)


@dataclass
class World:
    api: Api
    db: asyncpg.Connection
    a: Community
    b: Community
    members: dict[str, Member]
    tokens: dict[str, str | None]
    transactions: dict[str, str]  # member name -> a transaction touching that member's account (and no other member's)
    holds: dict[str, str]  # member name -> a pending hold on that member's account

    def name_of(self, member: Member) -> str:
        return next(name for name, m in self.members.items() if m.id == member.id)

    async def admin_write(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.api.post(path, self.api.admin_token, body)
        assert response.status_code in (200, 201), response.text
        data: dict[str, Any] = response.json()
        return data

    async def fresh_transaction(self, member: Member) -> str:
        """A new transaction on the member's account (a credit, or a pool grant for a pure resident)."""
        if self.name_of(member) == "resident":
            body = await self.admin_write("/v1/pool-grants", {"member_id": member.id, "minutes": 15})
        else:
            body = await self.admin_write(
                "/v1/credits", {"member_id": member.id, "minutes": 15, "service_date": "2026-11-02"}
            )
        tx: str = body["id"]
        return tx

    async def fresh_hold(self, member: Member) -> str:
        body = await self.admin_write("/v1/holds", {"member_id": member.id, "minutes": 15, "description": "bath"})
        hold: str = body["id"]
        return hold

    async def snapshot(self) -> dict[str, Any]:
        """Everything a request could change in the two communities (plus global community/token counts)."""
        text = await self.db.fetchval(
            """
            select jsonb_build_object(
              'accounts', (select jsonb_agg(jsonb_build_array(id, balance_minutes, held_minutes, version) order by id)
                             from accounts where community_id = any($1::uuid[])),
              'policies', (select jsonb_agg(jsonb_build_array(id, unit_minutes, max_transaction_minutes,
                                                              max_balance_minutes, overdraft_minutes) order by id)
                             from communities where id = any($1::uuid[])),
              'communities', (select count(*) from communities),
              'tokens', (select count(*) from tokens),
              'revocations', (select count(*) from token_revocations),
              'members', (select count(*) from members where community_id = any($1::uuid[])),
              'transactions', (select count(*) from transactions where community_id = any($1::uuid[])),
              'holds', (select count(*) from holds where community_id = any($1::uuid[])),
              'resolutions', (select count(*) from hold_resolutions r join holds h on h.id = r.hold_id
                               where h.community_id = any($1::uuid[])),
              'events', (select count(*) from audit_events where community_id = any($1::uuid[])
                           and action not in ('request.denied', 'write.rejected')),
              'service_requests', (select jsonb_agg(jsonb_build_array(id, status, provider_member_id, transaction_id)
                                                    order by id)
                                     from service_requests where community_id = any($1::uuid[])),
              'service_types', (select jsonb_agg(jsonb_build_array(community_id, code, name, default_minutes, active)
                                                 order by community_id, code)
                                  from service_types where community_id = any($1::uuid[]))
            )::text
            """,
            [uuid.UUID(self.a.id), uuid.UUID(self.b.id)],
        )
        data: dict[str, Any] = json.loads(text)
        return data

    @staticmethod
    def request_id() -> str:
        return "perm-" + uuid.uuid4().hex

    async def denials(self, request_id: str, expected: int = 0) -> int:
        """The request's `request.denied` events; waits (bounded) for `expected` of them, which a
        background task writes after the answer."""

        async def count() -> int:
            found: int = await self.db.fetchval(
                "select count(*) from audit_events where action = 'request.denied' and request_id = $1", request_id
            )
            return found

        return await eventually(count, lambda n: n >= expected, what=f"request.denied events of {request_id}")

    async def send(self, call: Call, token: str | None, request_id: str) -> Any:
        headers = {"X-Request-ID": request_id}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if call.moves_hours:
            headers["Idempotency-Key"] = uuid.uuid4().hex
        return await self.api.client.request(
            call.method, call.path, headers=headers, json=call.body, params=call.params
        )


@pytest.fixture(scope="module")
async def world(client: AsyncTestClient[Any], admin_token: str, database: str) -> AsyncIterator[World]:
    api = Api(client, admin_token)
    db = await asyncpg.connect(database, server_settings={"search_path": "timebank"})
    try:
        a = await api.community()
        b = await api.community()
        members = {
            "coordinator": await api.member(a, "coordinator"),
            "auditor": await api.member(a, "auditor"),
            "volunteer": await api.member(a, "volunteer"),
            "resident": await api.member(a, "resident"),
            "subject": await api.member(a, "volunteer", "resident"),
            "recipient": await api.member(a, "volunteer"),
            "other_coordinator": await api.member(b, "coordinator"),
        }
        global_auditor = "tb_test_global_auditor_" + secrets.token_urlsafe(24)
        await db.fetchval(
            "select create_principal_token('auditor', null, $1, 'test')",
            hashlib.sha256(global_auditor.encode()).digest(),
        )
        tokens: dict[str, str | None] = {
            "anonymous": None,
            "unknown_token": "tb_" + secrets.token_urlsafe(32),
            "admin": admin_token,
            "global_auditor": global_auditor,
        }
        tokens.update({name: m.token for name, m in members.items()})
        w = World(api=api, db=db, a=a, b=b, members=members, tokens=tokens, transactions={}, holds={})

        subject, volunteer, resident = members["subject"], members["volunteer"], members["resident"]
        for _ in range(6):
            credited = await w.admin_write(
                "/v1/credits", {"member_id": subject.id, "minutes": 1440, "service_date": "2026-11-01"}
            )
        w.transactions["subject"] = credited["id"]
        credited = await w.admin_write(
            "/v1/credits", {"member_id": volunteer.id, "minutes": 1440, "service_date": "2026-11-01"}
        )
        w.transactions["volunteer"] = credited["id"]
        await w.admin_write(
            "/v1/transfers", {"from_member_id": subject.id, "to_member_id": resident.id, "minutes": 1440}
        )
        await w.admin_write("/v1/transfers", {"from_member_id": subject.id, "to_pool": True, "minutes": 1440})
        w.transactions["resident"] = await w.fresh_transaction(resident)
        for name in ("subject", "volunteer", "resident"):
            w.holds[name] = await w.fresh_hold(members[name])
        yield w
    finally:
        await db.close()


# --- The endpoints: each builds its request against a target member ---------------------------------

Builder = Callable[[World, Member], Awaitable[Call]]
ENDPOINTS: dict[str, Builder] = {}


def endpoint(name: str) -> Callable[[Builder], Builder]:
    def register(builder: Builder) -> Builder:
        ENDPOINTS[name] = builder
        return builder

    return register


@endpoint("community.create")
async def community_create(w: World, t: Member) -> Call:
    slug = "c-" + uuid.uuid4().hex[:12]
    return Call("POST", "/v1/communities", {"slug": slug, "name": "新社区"}, expect={"slug": slug})


@endpoint("community.get")
async def community_get(w: World, t: Member) -> Call:
    return Call("GET", f"/v1/communities/{w.a.slug}", expect={"slug": w.a.slug, "id": w.a.id})


@endpoint("community.list")
async def community_list(w: World, t: Member) -> Call:
    return Call("GET", "/v1/communities", params={"limit": "500"})


@endpoint("community.policy")
async def community_policy(w: World, t: Member) -> Call:
    return Call("PUT", f"/v1/communities/{w.a.slug}/policy", POLICY, expect={"slug": w.a.slug, "policy": POLICY})


@endpoint("community.policy.patch")
async def community_policy_patch(w: World, t: Member) -> Call:
    return Call(
        "PATCH", f"/v1/communities/{w.a.slug}/policy", {"time_zone": "Asia/Shanghai"}, expect={"policy": POLICY}
    )


@endpoint("member.create")
async def member_create(w: World, t: Member) -> Call:
    body = {"display_name": "新成员", "roles": ["volunteer"], "grid": "2"}
    return Call("POST", f"/v1/communities/{w.a.slug}/members", body, expect={"community": w.a.slug})


@endpoint("member.get")
async def member_get(w: World, t: Member) -> Call:
    return Call("GET", f"/v1/members/{t.id}", expect={"id": t.id, "account_id": t.account_id})


@endpoint("member.list")
async def member_list(w: World, t: Member) -> Call:
    return Call("GET", f"/v1/communities/{w.a.slug}/members")


@endpoint("member.token")
async def member_token(w: World, t: Member) -> Call:
    return Call("POST", f"/v1/members/{t.id}/tokens", expect={"member_id": t.id})


@endpoint("token.list")
async def token_list(w: World, t: Member) -> Call:
    return Call("GET", f"/v1/members/{t.id}/tokens")


@endpoint("token.revoke")
async def token_revoke(w: World, t: Member) -> Call:
    """Revoke a token of the target member issued just for this row (never the one the caller uses)."""
    issued = await w.api.post(f"/v1/members/{t.id}/tokens", w.api.admin_token, key=None)
    assert issued.status_code == 201, issued.text
    digest = hashlib.sha256(issued.json()["token"].encode()).digest()
    token_id = str(await w.db.fetchval("select id from tokens where token_hash = $1", digest))
    return Call("POST", f"/v1/tokens/{token_id}/revoke", moves_hours=True, expect={"id": token_id})


@endpoint("me")
async def me(w: World, t: Member) -> Call:
    return Call("GET", "/v1/me")


@endpoint("account.get")
async def account_get(w: World, t: Member) -> Call:
    return Call("GET", f"/v1/accounts/{t.account_id}", expect={"id": t.account_id, "member_id": t.id})


@endpoint("account.get.pool")
async def account_get_pool(w: World, t: Member) -> Call:
    pool = w.a.accounts["pool"]
    return Call("GET", f"/v1/accounts/{pool}", expect={"id": pool, "kind": "pool"})


@endpoint("account.entries")
async def account_entries(w: World, t: Member) -> Call:
    return Call("GET", f"/v1/accounts/{t.account_id}/entries")


@endpoint("account.balance")
async def account_balance(w: World, t: Member) -> Call:
    return Call("GET", f"/v1/accounts/{t.account_id}/balance", expect={"account_id": t.account_id})


@endpoint("transaction.get")
async def transaction_get(w: World, t: Member) -> Call:
    tx = w.transactions[w.name_of(t)]
    return Call("GET", f"/v1/transactions/{tx}", expect={"id": tx})


@endpoint("transaction.list")
async def transaction_list(w: World, t: Member) -> Call:
    return Call("GET", f"/v1/communities/{w.a.slug}/transactions")


@endpoint("credit")
async def credit(w: World, t: Member) -> Call:
    body = {"member_id": t.id, "minutes": 15, "service_date": "2026-11-03", "description": "served"}
    return Call("POST", "/v1/credits", body, moves_hours=True, expect={"kind": "credit"})


@endpoint("redemption")
async def redemption(w: World, t: Member) -> Call:
    body = {"member_id": t.id, "minutes": 15, "description": "meal"}
    return Call("POST", "/v1/redemptions", body, moves_hours=True, expect={"kind": "redemption"})


@endpoint("transfer.gift")
async def transfer_gift(w: World, t: Member) -> Call:
    body = {"from_member_id": t.id, "to_member_id": w.members["recipient"].id, "minutes": 15}
    return Call("POST", "/v1/transfers", body, moves_hours=True, expect={"kind": "transfer"})


@endpoint("transfer.to_pool")
async def transfer_to_pool(w: World, t: Member) -> Call:
    body = {"from_member_id": t.id, "to_pool": True, "minutes": 15}
    return Call("POST", "/v1/transfers", body, moves_hours=True, expect={"kind": "donation"})


@endpoint("pool_grant")
async def pool_grant(w: World, t: Member) -> Call:
    body = {"member_id": t.id, "minutes": 15, "description": "in need"}
    return Call("POST", "/v1/pool-grants", body, moves_hours=True, expect={"kind": "pool_grant"})


@endpoint("reversal")
async def reversal(w: World, t: Member) -> Call:
    tx = await w.fresh_transaction(t)
    return Call(
        "POST",
        f"/v1/transactions/{tx}/reversal",
        {"reason": "entered twice"},
        moves_hours=True,
        expect={"kind": "reversal", "reverses": tx},
    )


@endpoint("hold.place")
async def hold_place(w: World, t: Member) -> Call:
    body = {"member_id": t.id, "minutes": 15, "description": "haircut"}
    return Call("POST", "/v1/holds", body, moves_hours=True, expect={"member_id": t.id, "status": "pending"})


@endpoint("hold.get")
async def hold_get(w: World, t: Member) -> Call:
    hold = w.holds[w.name_of(t)]
    return Call("GET", f"/v1/holds/{hold}", expect={"id": hold, "member_id": t.id})


@endpoint("hold.capture")
async def hold_capture(w: World, t: Member) -> Call:
    hold = await w.fresh_hold(t)
    return Call(
        "POST", f"/v1/holds/{hold}/capture", {}, moves_hours=True, expect={"kind": "hold_capture", "hold_id": hold}
    )


@endpoint("hold.release")
async def hold_release(w: World, t: Member) -> Call:
    hold = await w.fresh_hold(t)
    return Call("POST", f"/v1/holds/{hold}/release", {}, moves_hours=True, expect={"id": hold, "status": "released"})


@endpoint("hold.list.community")
async def hold_list_community(w: World, t: Member) -> Call:
    return Call("GET", f"/v1/communities/{w.a.slug}/holds", params={"member_id": t.id})


@endpoint("hold.list.member")
async def hold_list_member(w: World, t: Member) -> Call:
    return Call("GET", f"/v1/members/{t.id}/holds", params={"status": "pending"})


@endpoint("audit.list")
async def audit_list(w: World, t: Member) -> Call:
    return Call("GET", "/v1/audit-events", params={"community": w.a.slug})


@endpoint("audit.list.unfiltered")
async def audit_list_unfiltered(w: World, t: Member) -> Call:
    return Call("GET", "/v1/audit-events")


# people: member changes, PINs, relatives


@endpoint("member.patch")
async def member_patch(w: World, t: Member) -> Call:
    body = {"reason": "网格调整", "grid": "7"}
    return Call("PATCH", f"/v1/members/{t.id}", body, moves_hours=True, expect={"id": t.id, "grid": "7"})


@endpoint("member.pin")
async def member_pin(w: World, t: Member) -> Call:
    # Members have no PIN in this world: the member itself cannot set its first one.
    return Call("POST", f"/v1/members/{t.id}/pin", {"pin": "135790"}, moves_hours=True)


async def _fresh_relative(w: World) -> Member:
    return await w.api.member(w.a, "resident", name="亲属")


@endpoint("relative.add")
async def relative_add(w: World, t: Member) -> Call:
    relative = await _fresh_relative(w)
    body = {"relative_member_id": relative.id, "relation": "parent"}
    return Call(
        "POST", f"/v1/members/{t.id}/relatives", body, moves_hours=True,
        expect={"member_id": relative.id, "relation": "parent"},
    )  # fmt: skip


@endpoint("relative.list")
async def relative_list(w: World, t: Member) -> Call:
    return Call("GET", f"/v1/members/{t.id}/relatives")


@endpoint("member.passbook")
async def member_passbook(w: World, t: Member) -> Call:
    require_tools()  # a 200 is a PDF: without a Chinese font it would be 503 pdf_font_missing
    return Call("GET", f"/v1/members/{t.id}/passbook.pdf")


@endpoint("credit_batch")
async def credit_batch(w: World, t: Member) -> Call:
    body = {"community": w.a.slug, "service_date": "2026-11-02", "credits": [{"member_id": t.id, "minutes": 15}]}
    return Call("POST", "/v1/credit-batches", body, moves_hours=True, expect={"community": w.a.slug})


@endpoint("credit_batch.get")
async def credit_batch_get(w: World, t: Member) -> Call:
    subject = w.members["subject"]
    body = {"community": w.a.slug, "service_date": "2026-11-02", "credits": [{"member_id": subject.id, "minutes": 15}]}
    batch = await w.admin_write("/v1/credit-batches", body)
    return Call("GET", f"/v1/credit-batches/{batch['id']}", expect={"id": batch["id"]})


@endpoint("relative.remove")
async def relative_remove(w: World, t: Member) -> Call:
    relative = await _fresh_relative(w)
    await w.admin_write(f"/v1/members/{t.id}/relatives", {"relative_member_id": relative.id, "relation": "sibling"})
    return Call("DELETE", f"/v1/members/{t.id}/relatives/{relative.id}", moves_hours=True)


# --- Service types and service requests ----------------------------------------------------------


@endpoint("service_type.list")
async def service_type_list(w: World, t: Member) -> Call:
    return Call("GET", f"/v1/communities/{w.a.slug}/service-types")


@endpoint("service_type.create")
async def service_type_create(w: World, t: Member) -> Call:
    code = "t_" + uuid.uuid4().hex[:12]
    body = {"code": code, "name": "理发", "default_minutes": 30}
    return Call("POST", f"/v1/communities/{w.a.slug}/service-types", body, moves_hours=True, expect={"code": code})


@endpoint("service_type.update")
async def service_type_update(w: World, t: Member) -> Call:
    body = {"name": "助餐", "default_minutes": 60, "active": True}
    return Call("PUT", f"/v1/communities/{w.a.slug}/service-types/meals", body, expect={"code": "meals"})


def _soon() -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).isoformat()


async def _service_request(w: World, served: Member, until: str = "open", provider: Member | None = None) -> str:
    """A community-funded request for `served`, made by the admin and taken as far as `until`."""
    body = {"member_id": served.id, "service_type": "meals", "minutes": 15, "funding": "community",
            "scheduled_at": _soon()}  # fmt: skip
    request_id: str = (await w.admin_write("/v1/service-requests", body))["id"]
    steps = [("assign", {"provider_member_id": (provider or w.members["recipient"]).id}), ("check-in", {}),
             ("report", {"minutes": 15})]  # fmt: skip
    for name, step_body in steps[: {"open": 0, "assigned": 1, "in_progress": 2, "reported": 3}[until]]:
        await w.admin_write(f"/v1/service-requests/{request_id}/{name}", step_body)
    return request_id


def _provider_for(w: World, t: Member) -> Member:
    """The target itself when it can provide a service, else the spare volunteer."""
    return t if w.name_of(t) in ("volunteer", "subject") else w.members["recipient"]


def _served_besides(w: World, t: Member) -> Member:
    return w.members["resident"] if w.name_of(t) == "subject" else w.members["subject"]


@endpoint("service_request.create")
async def service_request_create(w: World, t: Member) -> Call:
    body = {"member_id": t.id, "service_type": "meals", "minutes": 15, "funding": "own",
            "scheduled_at": _soon()}  # fmt: skip
    return Call("POST", "/v1/service-requests", body, moves_hours=True, expect={"member_id": t.id, "status": "open"})


@endpoint("service_request.get")
async def service_request_get(w: World, t: Member) -> Call:
    request_id = await _service_request(w, t, "assigned")
    return Call("GET", f"/v1/service-requests/{request_id}", expect={"id": request_id, "member_id": t.id})


@endpoint("service_request.list")
async def service_request_list(w: World, t: Member) -> Call:
    return Call("GET", f"/v1/communities/{w.a.slug}/service-requests")


@endpoint("service_request.assign")
async def service_request_assign(w: World, t: Member) -> Call:
    request_id = await _service_request(w, t)
    body = {"provider_member_id": w.members["recipient"].id}
    return Call("POST", f"/v1/service-requests/{request_id}/assign", body, moves_hours=True,
                expect={"status": "assigned"})  # fmt: skip


@endpoint("service_request.check_in")
async def service_request_check_in(w: World, t: Member) -> Call:
    request_id = await _service_request(w, _served_besides(w, t), "assigned", _provider_for(w, t))
    return Call("POST", f"/v1/service-requests/{request_id}/check-in", {}, moves_hours=True,
                expect={"status": "in_progress"})  # fmt: skip


@endpoint("service_request.report")
async def service_request_report(w: World, t: Member) -> Call:
    request_id = await _service_request(w, _served_besides(w, t), "in_progress", _provider_for(w, t))
    return Call("POST", f"/v1/service-requests/{request_id}/report", {"minutes": 15}, moves_hours=True,
                expect={"status": "reported"})  # fmt: skip


@endpoint("service_request.confirm")
async def service_request_confirm(w: World, t: Member) -> Call:
    request_id = await _service_request(w, t, "reported")
    return Call("POST", f"/v1/service-requests/{request_id}/confirm", {"rating": 5}, moves_hours=True,
                expect={"status": "completed"})  # fmt: skip


@endpoint("service_request.dispute")
async def service_request_dispute(w: World, t: Member) -> Call:
    request_id = await _service_request(w, t, "reported")
    return Call("POST", f"/v1/service-requests/{request_id}/dispute", {"reason": "没来"}, moves_hours=True,
                expect={"status": "disputed"})  # fmt: skip


@endpoint("service_request.cancel")
async def service_request_cancel(w: World, t: Member) -> Call:
    request_id = await _service_request(w, t)
    return Call("POST", f"/v1/service-requests/{request_id}/cancel", {"reason": "改天"}, moves_hours=True,
                expect={"status": "cancelled"})  # fmt: skip


# --- The matrix ------------------------------------------------------------------------------------

# caller -> (whose token, which member the request is about). "_other" callers ask about someone else.
CALLERS = {
    "anonymous": ("anonymous", "subject"),
    "unknown_token": ("unknown_token", "subject"),
    "admin": ("admin", "subject"),
    "coordinator": ("coordinator", "subject"),
    "other_coordinator": ("other_coordinator", "subject"),
    "auditor": ("auditor", "subject"),
    "global_auditor": ("global_auditor", "subject"),
    "volunteer": ("volunteer", "volunteer"),
    "volunteer_other": ("volunteer", "subject"),
    "resident": ("resident", "resident"),
    "resident_other": ("resident", "subject"),
}

# Columns: admin; coordinator of community A; coordinator of community B; auditor member of A; auditor of
# no community; volunteer about itself / about another member; resident about itself / about another.
# The resources are all in community A. None: the endpoint is not about a member, so there is no "other".
# Every endpoint also gets an anonymous and an unknown-token row, both 401.
COLUMNS = (
    "admin", "coordinator", "other_coordinator", "auditor", "global_auditor",
    "volunteer", "volunteer_other", "resident", "resident_other",
)  # fmt: skip
MATRIX: dict[str, tuple[int | None, ...]] = {
    #                         admin coord  other  audit  global  vol  vol→S  res  res→S
    "community.create":       (201,  403,   403,   403,   403,   403,  None,  403, None),
    "community.get":          (200,  200,   404,   200,   200,   200,  None,  200, None),
    "community.list":         (200,  200,   200,   200,   200,   200,  None,  200, None),
    "community.policy":       (200,  403,   403,   403,   403,   403,  None,  403, None),
    "community.policy.patch": (200,  403,   403,   403,   403,   403,  None,  403, None),
    "member.create":          (201,  201,   404,   403,   403,   403,  None,  403, None),
    "member.get":             (200,  200,   404,   200,   200,   200,  403,   200,  403),
    "member.list":            (200,  200,   404,   200,   200,   403,  None,  403, None),
    "member.token":           (201,  201,   404,   403,   403,   403,  403,   403,  403),
    "token.list":             (200,  200,   404,   200,   200,   200,  403,   200,  403),
    "token.revoke":           (200,  200,   404,   403,   403,   200,  403,   200,  403),
    "me":                     (200,  200,   200,   200,   200,   200,  None,  200, None),
    "account.get":            (200,  200,   404,   200,   200,   200,  403,   200,  403),
    "account.get.pool":       (200,  200,   404,   200,   200,   403,  None,  403, None),
    "account.entries":        (200,  200,   404,   200,   200,   200,  403,   200,  403),
    "account.balance":        (200,  200,   404,   200,   200,   200,  403,   200,  403),
    "transaction.get":        (200,  200,   404,   200,   200,   200,  403,   200,  403),
    "transaction.list":       (200,  200,   404,   200,   200,   403,  None,  403, None),
    "credit":                 (201,  201,   404,   403,   403,   403,  403,   403,  403),
    "redemption":             (201,  201,   404,   403,   403,   403,  403,   201,  403),
    "transfer.gift":          (201,  201,   404,   403,   403,   201,  403,   201,  403),
    "transfer.to_pool":       (201,  201,   404,   403,   403,   201,  403,   201,  403),
    "pool_grant":             (201,  201,   404,   403,   403,   403,  403,   403,  403),
    "reversal":               (201,  201,   404,   403,   403,   403,  403,   403,  403),
    "hold.place":             (201,  201,   404,   403,   403,   403,  403,   201,  403),
    "hold.get":               (200,  200,   404,   200,   200,   200,  403,   200,  403),
    "hold.capture":           (201,  201,   404,   403,   403,   403,  403,   403,  403),
    "hold.release":           (200,  200,   404,   403,   403,   403,  403,   403,  403),
    "hold.list.community":    (200,  200,   404,   200,   200,   403,  None,  403, None),
    "hold.list.member":       (200,  200,   404,   200,   200,   200,  403,   200,  403),
    "audit.list":             (200,  200,   404,   200,   200,   403,  None,  403, None),
    "audit.list.unfiltered":  (200,  200,   200,   200,   200,   403,  None,  403, None),
    "member.patch":           (200,  200,   404,   403,   403,   403,  403,   403,  403),
    "member.pin":             (204,  204,   404,   403,   403,   403,  403,   403,  403),
    "relative.add":           (201,  201,   404,   403,   403,   403,  403,   403,  403),
    "relative.list":          (200,  200,   404,   200,   200,   200,  403,   200,  403),
    "relative.remove":        (204,  204,   404,   403,   403,   403,  403,   403,  403),
    "member.passbook":        (200,  200,   404,   200,   200,   200,  403,   200,  403),
    "credit_batch":           (201,  201,   404,   403,   403,   403,  403,   403,  403),
    "credit_batch.get":       (200,  200,   404,   200,   200,   403,  None,  403, None),
    "service_type.list":      (200,  200,   404,   200,   200,   200,  None,  200, None),
    "service_type.create":    (201,  201,   404,   403,   403,   403,  None,  403, None),
    "service_type.update":    (200,  200,   404,   403,   403,   403,  None,  403, None),
    "service_request.create": (201,  201,   404,   403,   403,   403,  403,   201,  403),
    "service_request.get":    (200,  200,   404,   200,   200,   200,  403,   200,  403),
    "service_request.list":   (200,  200,   404,   200,   200,   200,  None,  200, None),
    "service_request.assign": (200,  200,   404,   403,   403,   403,  403,   403,  403),
    "service_request.check_in": (200, 200,  404,   403,   403,   200,  403,   403,  403),
    "service_request.report": (200,  200,   404,   403,   403,   200,  403,   403,  403),
    "service_request.confirm": (200, 200,   404,   403,   403,   200,  403,   200,  403),
    "service_request.dispute": (200, 200,   404,   403,   403,   200,  403,   200,  403),
    "service_request.cancel": (200,  200,   404,   403,   403,   200,  403,   200,  403),
}  # fmt: skip


def _matrix_rows() -> list[Any]:
    rows = []
    for name, statuses in MATRIX.items():
        cells = [("anonymous", 401), ("unknown_token", 401), *zip(COLUMNS, statuses, strict=True)]
        rows.extend(
            pytest.param(name, caller, status, id=f"{name}-{caller}-{status}")
            for caller, status in cells
            if status is not None
        )
    return rows


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0].strip() == "application/problem+json"
    body: dict[str, Any] = response.json()
    missing = [f for f in PROBLEM_FIELDS if f not in body]
    assert not missing, f"problem lacks {missing}: {body}"
    assert body["status"] == status
    assert body["code"] == code
    assert all(isinstance(body[f], str) and body[f] for f in ("type", "title", "detail")), body
    return body


def test_matrix_covers_every_endpoint() -> None:
    assert set(MATRIX) == set(ENDPOINTS)
    assert all(len(row) == len(COLUMNS) for row in MATRIX.values())


@pytest.mark.parametrize(("endpoint_name", "caller", "status"), _matrix_rows())
async def test_role_matrix(world: World, endpoint_name: str, caller: str, status: int) -> None:
    token_of, target = CALLERS[caller]
    call = await ENDPOINTS[endpoint_name](world, world.members[target])
    before = await world.snapshot()
    request_id = world.request_id()
    response = await world.send(call, world.tokens[token_of], request_id)
    after = await world.snapshot()

    if status < 400:
        assert response.status_code == status, response.text
        json_body = response.content and "json" in response.headers.get("content-type", "")
        body = response.json() if json_body else {}
        assert {k: body.get(k) for k in call.expect} == call.expect
        if call.method == "GET":
            assert after == before, "a read changed state"
        else:
            assert after != before, "an allowed write changed nothing"
    else:
        assert_problem(response, status, CODE_OF_STATUS[status])
        assert after == before, "a refused request changed state"
    denied = 1 if status in (401, 403) else 0
    assert await world.denials(request_id, denied) == denied


# --- Coordinators appoint volunteers and residents; only an admin appoints staff and auditors ------


@pytest.mark.parametrize(
    ("caller", "roles", "status"),
    [
        ("coordinator", ["volunteer"], 201),
        ("coordinator", ["resident"], 201),
        ("coordinator", ["volunteer", "resident"], 201),
        ("coordinator", ["coordinator"], 403),
        ("coordinator", ["auditor"], 403),
        ("coordinator", ["volunteer", "coordinator"], 403),
        ("coordinator", ["resident", "auditor"], 403),
        ("admin", ["coordinator"], 201),
        ("admin", ["auditor"], 201),
        ("admin", ["volunteer", "coordinator"], 201),
    ],
    ids=lambda v: "+".join(v) if isinstance(v, list) else str(v),
)
async def test_who_may_grant_which_roles(world: World, caller: str, roles: list[str], status: int) -> None:
    call = Call(
        "POST", f"/v1/communities/{world.a.slug}/members", {"display_name": "候选人", "roles": roles, "grid": "4"}
    )
    before = await world.snapshot()
    request_id = world.request_id()
    response = await world.send(call, world.tokens[caller], request_id)
    after = await world.snapshot()
    if status == 201:
        assert response.status_code == 201, response.text
        assert sorted(response.json()["roles"]) == sorted(roles)
        assert after["members"] == before["members"] + 1
        assert await world.denials(request_id) == 0
    else:
        assert_problem(response, 403, "forbidden")
        assert after == before
        assert await world.denials(request_id, 1) == 1


# --- A resource of another community answers exactly like one that does not exist -----------------

UUID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
PROBED = (
    "member.get", "member.token", "token.list", "token.revoke", "account.get", "account.get.pool",
    "account.entries", "account.balance",
    "transaction.get", "hold.get", "credit", "redemption", "transfer.gift", "transfer.to_pool", "pool_grant",
    "reversal", "hold.place", "hold.capture", "hold.release",
    "member.patch", "member.pin", "relative.add", "relative.list", "relative.remove", "member.passbook", "credit_batch",
    "credit_batch.get",
    "service_request.create", "service_request.get", "service_request.assign", "service_request.check_in",
    "service_request.report", "service_request.confirm", "service_request.dispute", "service_request.cancel",
)  # fmt: skip


def _with_random_ids(call: Call) -> Call:
    """The same request, with every id in its path and body replaced by one that exists nowhere."""

    def swap(text: str) -> str:
        return UUID_PATTERN.sub(lambda _: str(uuid.uuid4()), text)

    body = json.loads(swap(json.dumps(call.body))) if call.body is not None else None
    return Call(call.method, swap(call.path), body, call.params, call.moves_hours)


@pytest.mark.parametrize("endpoint_name", PROBED)
async def test_other_community_is_indistinguishable_from_nothing(world: World, endpoint_name: str) -> None:
    call = await ENDPOINTS[endpoint_name](world, world.members["subject"])
    token = world.tokens["other_coordinator"]
    before = await world.snapshot()
    real = await world.send(call, token, world.request_id())
    phantom = await world.send(_with_random_ids(call), token, world.request_id())
    assert await world.snapshot() == before
    real_body = assert_problem(real, 404, "not_found")
    phantom_body = assert_problem(phantom, 404, "not_found")
    real_body.pop("request_id", None)
    phantom_body.pop("request_id", None)
    assert real_body == phantom_body, "the answer reveals that the resource exists"


# --- What each caller sees in lists -----------------------------------------------------------------


async def _community_slugs(world: World, caller: str) -> set[str]:
    slugs: set[str] = set()
    cursor: str | None = None
    while True:
        params = {"limit": "500", **({"cursor": cursor} if cursor else {})}
        response = await world.send(
            Call("GET", "/v1/communities", params=params), world.tokens[caller], world.request_id()
        )
        assert response.status_code == 200, response.text
        page = response.json()
        slugs |= {c["slug"] for c in page["items"]}
        cursor = page["next_cursor"]
        if cursor is None:
            return slugs


@pytest.mark.parametrize(
    ("caller", "sees_a", "sees_b"),
    [
        ("admin", True, True),
        ("global_auditor", True, True),
        ("coordinator", True, False),
        ("auditor", True, False),
        ("volunteer", True, False),
        ("resident", True, False),
        ("other_coordinator", False, True),
    ],
)
async def test_community_list_is_scoped(world: World, caller: str, sees_a: bool, sees_b: bool) -> None:
    slugs = await _community_slugs(world, caller)
    assert (world.a.slug in slugs, world.b.slug in slugs) == (sees_a, sees_b)
    if caller not in ("admin", "global_auditor"):
        assert len(slugs) == 1


@pytest.mark.parametrize(
    ("caller", "community"),
    [("coordinator", "a"), ("auditor", "a"), ("other_coordinator", "b")],
)
async def test_unfiltered_audit_trail_is_the_callers_community(world: World, caller: str, community: str) -> None:
    response = await world.send(
        Call("GET", "/v1/audit-events", params={"limit": "500"}), world.tokens[caller], world.request_id()
    )
    assert response.status_code == 200, response.text
    slug = getattr(world, community).slug
    items = response.json()["items"]
    assert items, "the caller's community has events"
    assert {e["community"] for e in items} == {slug}


async def test_global_auditor_reads_every_communitys_trail(world: World) -> None:
    for community in (world.a, world.b):
        response = await world.send(
            Call("GET", "/v1/audit-events", params={"community": community.slug}),
            world.tokens["global_auditor"],
            world.request_id(),
        )
        assert response.status_code == 200, response.text
        assert {e["community"] for e in response.json()["items"]} == {community.slug}


async def test_member_list_shows_only_that_community(world: World) -> None:
    response = await world.send(
        Call("GET", f"/v1/communities/{world.a.slug}/members", params={"limit": "500"}),
        world.tokens["coordinator"],
        world.request_id(),
    )
    assert response.status_code == 200, response.text
    ids = {m["id"] for m in response.json()["items"]}
    assert {m.id for name, m in world.members.items() if name != "other_coordinator"} <= ids
    assert world.members["other_coordinator"].id not in ids


# --- Who the caller is, and who acted for whom ------------------------------------------------------


@pytest.mark.parametrize(
    ("caller", "roles", "member", "community"),
    [
        ("admin", ["admin"], None, None),
        ("global_auditor", ["auditor"], None, None),
        ("coordinator", ["coordinator"], "coordinator", "a"),
        ("auditor", ["auditor"], "auditor", "a"),
        ("subject", ["resident", "volunteer"], "subject", "a"),
        ("other_coordinator", ["coordinator"], "other_coordinator", "b"),
    ],
)
async def test_me_describes_the_caller(
    world: World, caller: str, roles: list[str], member: str | None, community: str | None
) -> None:
    response = await world.send(Call("GET", "/v1/me"), world.tokens[caller], world.request_id())
    assert response.status_code == 200, response.text
    body = response.json()
    assert sorted(body["roles"]) == roles
    assert (body["member"] or {}).get("id") == (world.members[member].id if member else None)
    assert body["community"] == (getattr(world, community).slug if community else None)


async def test_writes_record_actor_and_on_behalf_of(world: World) -> None:
    async def principal_of(caller: str) -> str:
        response = await world.send(Call("GET", "/v1/me"), world.tokens[caller], world.request_id())
        principal: str = response.json()["principal_id"]
        return principal

    subject, resident = world.members["subject"], world.members["resident"]
    for caller, member, on_behalf_of in (
        ("coordinator", subject, subject.id),
        ("admin", subject, subject.id),
        ("resident", resident, None),
    ):
        call = Call("POST", "/v1/redemptions", {"member_id": member.id, "minutes": 15}, moves_hours=True)
        response = await world.send(call, world.tokens[caller], world.request_id())
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["created_by"] == await principal_of(caller)
        assert body["on_behalf_of"] == on_behalf_of


# --- Malformed credentials are unauthenticated too --------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "bearer-x", "Token abc", "Bearer " + "x" * 300],
    ids=["basic", "bearer-no-token", "bearer-blank", "no-scheme", "other-scheme", "overlong"],
)
async def test_malformed_authorization_is_401(world: World, authorization: str) -> None:
    request_id = world.request_id()
    response = await world.api.client.get(
        "/v1/me", headers={"Authorization": authorization, "X-Request-ID": request_id}
    )
    assert_problem(response, 401, "unauthenticated")
    assert await world.denials(request_id, 1) == 1
