"""Outside-in security: what tests/api/test_permissions.py, tests/sql/test_invariants.py and
tests/e2e/test_server.py leave open.

- Another community's ids, tried by every kind of member of that other community (volunteer,
  resident, auditor, coordinator), answer exactly like ids that exist nowhere, and change nothing.
- Token guessing through the real server process: each client address has a budget of failed
  authentications; over it, 429 `too_many_requests` with Retry-After, even for a token that would have
  been right, while other addresses and tokens that authenticated recently keep working; X-Forwarded-For
  cannot buy a new budget; throttled requests write no audit event.
- No token (nor its stored hash) appears in any log line, even at debug level, whatever the route and
  outcome. PINs and their hashes are looked for in responses, logs and audit events by
  tests/api/test_people.py.
- The running service holds database connections only as the service role, never as the owner.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from tests import pg
from tests.api import test_permissions
from tests.api.test_permissions import ENDPOINTS, PROBED, Call, World, _with_random_ids
from tests.client import Member
from tests.e2e.server import Server, running_server
from tests.eventually import eventually
from timebank.config import Settings

# The role matrix's module-wide world (two communities, their members and history), as a fixture here too.
world = test_permissions.world

PROBLEM = "application/problem+json"
BUDGET = 5  # failed authentications per minute and address on the throttled server


# --- another community's ids answer like missing ones, for every kind of member --------------------

OUTSIDERS = ("other_coordinator", "outside_volunteer", "outside_resident", "outside_auditor")
# Endpoints naming a community by slug: tried with community A's slug and with one that exists nowhere.
BY_SLUG = ("community.get", "community.policy", "member.create", "member.list", "transaction.list", "audit.list")


@pytest.fixture(scope="module")
async def outsiders(world: World) -> dict[str, str]:
    """Tokens of members of community B, who must learn nothing about community A."""
    made: dict[str, Member] = {
        "outside_volunteer": await world.api.member(world.b, "volunteer"),
        "outside_resident": await world.api.member(world.b, "resident"),
        "outside_auditor": await world.api.member(world.b, "auditor"),
    }
    for member in made.values():
        assert (await world.api.credit(member, 60)).status_code in (201, 422)
    tokens = {name: m.token for name, m in made.items()}
    other = world.tokens["other_coordinator"]
    assert other is not None
    tokens["other_coordinator"] = other
    return tokens


def phantom_of(call: Call, slug: str, unknown: str) -> Call:
    """The same request about things that do not exist: fresh uuids, and a slug nobody registered."""
    swapped = _with_random_ids(call)
    params = {k: v.replace(slug, unknown) for k, v in (call.params or {}).items()} or None
    return Call(swapped.method, swapped.path.replace(slug, unknown), swapped.body, params, swapped.moves_hours)


def comparable(response: Any, unknown: str, slug: str) -> tuple[int, str, Any]:
    """Status, media type and body (without its request id; the unknown slug named as the real one)."""
    content_type = response.headers.get("content-type", "").split(";")[0]
    try:
        body = json.loads(response.text.replace(unknown, slug))
    except ValueError:
        body = response.text
    if isinstance(body, dict):
        body.pop("request_id", None)
    return response.status_code, content_type, body


@pytest.mark.parametrize("caller", OUTSIDERS)
async def test_another_communitys_ids_answer_like_missing_ones(
    world: World, outsiders: dict[str, str], caller: str
) -> None:
    token = outsiders[caller]
    leaks = {}
    for name in (*PROBED, *BY_SLUG):
        call = await ENDPOINTS[name](world, world.members["subject"])
        before = await world.snapshot()
        real = await world.send(call, token, world.request_id())
        unknown = "x-" + uuid.uuid4().hex[:12]
        phantom = await world.send(phantom_of(call, world.a.slug, unknown), token, world.request_id())
        assert await world.snapshot() == before, f"{name} as {caller} changed state"
        assert real.status_code in (403, 404), (name, real.status_code, real.text)
        assert real.headers["content-type"].startswith(PROBLEM), name
        seen, missing = comparable(real, unknown, world.a.slug), comparable(phantom, unknown, world.a.slug)
        if seen != missing:
            leaks[name] = (seen, missing)
    assert not leaks, f"{caller} can tell community A's ids from missing ones: {leaks}"


# --- token guessing through the real server -------------------------------------------------------


@dataclass
class Throttled:
    server: Server
    db: asyncpg.Connection
    admin_token: str
    member_id: str


@pytest.fixture(scope="module")
async def throttled(server_url: str, settings: Settings) -> AsyncIterator[Throttled]:
    name, url = await pg.migrated_database(server_url, settings)
    admin_token = "tb_sec_admin_" + secrets.token_urlsafe(24)
    env = {
        "TIMEBANK_ADMIN_TOKEN": admin_token,
        "TIMEBANK_AUTH_FAILURES_PER_MINUTE": str(BUDGET),
        "TIMEBANK_LOG_LEVEL": "debug",
    }
    try:
        async with running_server(url, **env) as server, client_at(server, "127.0.0.254") as http:
            admin = {"Authorization": f"Bearer {admin_token}"}
            slug = "s-" + uuid.uuid4().hex[:12]
            made = await http.post("/v1/communities", headers=admin, json={"slug": slug, "name": "安全"})
            assert made.status_code == 201, made.text
            member = await http.post(
                f"/v1/communities/{slug}/members", headers=admin, json={"display_name": "甲", "roles": ["volunteer"]}
            )
            assert member.status_code == 201, member.text
            db = await asyncpg.connect(url, server_settings={"search_path": "timebank"})
            try:
                yield Throttled(server, db, admin_token, member.json()["id"])
            finally:
                await db.close()
    finally:
        await pg.drop_database(server_url, name)


def client_at(server: Server, address: str) -> httpx.AsyncClient:
    """A client whose connections come from `address` (any of 127.0.0.0/8 reaches the server)."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(base_url=server.url, transport=transport, timeout=30)


async def new_token(t: Throttled) -> str:
    """A member token that has never been used (so no cache knows it)."""
    async with client_at(t.server, "127.0.0.254") as http:
        response = await http.post(
            f"/v1/members/{t.member_id}/tokens", headers={"Authorization": f"Bearer {t.admin_token}"}
        )
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


async def guess(http: httpx.AsyncClient, times: int, **headers: str) -> list[int]:
    statuses = []
    for _ in range(times):
        auth = {"Authorization": "Bearer tb_guess_" + secrets.token_urlsafe(32)}
        statuses.append((await http.get("/v1/me", headers=auth | headers)).status_code)
    return statuses


def assert_throttled(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["code"] == "too_many_requests", body
    assert body["status"] == 429
    retry_after = response.headers["retry-after"]
    assert retry_after.isdigit(), retry_after
    assert 1 <= int(retry_after) <= 60, retry_after


async def test_guessing_is_answered_429_after_the_budget(throttled: Throttled) -> None:
    async with client_at(throttled.server, "127.0.0.2") as http:
        assert await guess(http, BUDGET) == [401] * BUDGET
        assert await guess(http, 3) == [429] * 3
        assert_throttled(await http.get("/v1/me", headers={"Authorization": "Bearer tb_guess_again"}))
        # A request with no token at all is no guess: still 401, never a way around the budget.
        assert (await http.get("/v1/me")).status_code in (401, 429)
        assert (await http.get("/health")).status_code == 200


async def test_a_right_guess_is_not_recognisable_once_throttled(throttled: Throttled) -> None:
    valid = await new_token(throttled)
    async with client_at(throttled.server, "127.0.0.3") as http:
        await guess(http, BUDGET)
        assert_throttled(await http.get("/v1/me", headers={"Authorization": f"Bearer {valid}"}))
    async with client_at(throttled.server, "127.0.0.4") as http:
        assert (await http.get("/v1/me", headers={"Authorization": f"Bearer {valid}"})).status_code == 200


async def test_other_addresses_are_not_locked_out(throttled: Throttled) -> None:
    fresh = await new_token(throttled)
    async with client_at(throttled.server, "127.0.0.5") as attacker:
        await guess(attacker, BUDGET + 3)
        assert_throttled(await attacker.get("/v1/me", headers={"Authorization": "Bearer tb_guess"}))
    async with client_at(throttled.server, "127.0.0.6") as bystander:
        assert (await bystander.get("/v1/me", headers={"Authorization": f"Bearer {fresh}"})).status_code == 200
        assert await guess(bystander, 1) == [401]


async def test_recently_authenticated_tokens_keep_working_at_a_throttled_address(throttled: Throttled) -> None:
    member = await new_token(throttled)
    async with client_at(throttled.server, "127.0.0.7") as http:
        for token in (throttled.admin_token, member):
            assert (await http.get("/v1/me", headers={"Authorization": f"Bearer {token}"})).status_code == 200
        await guess(http, BUDGET + 2)
        assert_throttled(await http.get("/v1/me", headers={"Authorization": "Bearer tb_guess"}))
        for token in (throttled.admin_token, member):
            response = await http.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200, response.text


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.8"])
async def test_forwarded_for_does_not_buy_a_new_budget(throttled: Throttled, address: str) -> None:
    """X-Forwarded-For is the client's word, not its address: not even from loopback is it believed."""
    async with client_at(throttled.server, address) as http:
        statuses = []
        for i in range(BUDGET + 3):
            forwarded = {"X-Forwarded-For": f"198.51.100.{i + 1}", "Forwarded": f"for=198.51.100.{i + 1}"}
            statuses += await guess(http, 1, **forwarded)
        assert statuses == [401] * BUDGET + [429] * 3, statuses


async def test_throttled_requests_write_no_audit_events(throttled: Throttled) -> None:
    async with client_at(throttled.server, "127.0.0.9") as http:
        ids = []
        for i in range(BUDGET + 4):
            request_id = f"guess-{uuid.uuid4().hex}-{i}"
            ids.append(request_id)
            headers = {"Authorization": f"Bearer tb_guess_{i}", "X-Request-ID": request_id}
            await http.post("/v1/communities", headers=headers, json={"slug": "g-" + uuid.uuid4().hex[:8], "name": "g"})
    # A refusal's audit event is written after its answer. Wait (bounded) for the denials within the
    # budget, then for one more denial sent after the throttled requests: once it is there, any
    # event a throttled request might have caused would have had its chance to appear too.
    sentinel = f"sentinel-{uuid.uuid4().hex}"
    async with client_at(throttled.server, "127.0.0.11") as http:
        headers = {"Authorization": "Bearer tb_guess_sentinel", "X-Request-ID": sentinel}
        assert (await http.get("/v1/me", headers=headers)).status_code == 401

    async def events() -> list[asyncpg.Record]:
        return await throttled.db.fetch(
            "select request_id, action from audit_events where request_id = any($1::text[])", [*ids, sentinel]
        )

    def settled(found: list[asyncpg.Record]) -> bool:
        return len(found) > BUDGET and any(r["request_id"] == sentinel for r in found)

    found = await eventually(events, settled, what="the denials' audit events")
    rows = [r for r in found if r["request_id"] != sentinel]
    assert sorted(r["request_id"] for r in rows) == sorted(ids[:BUDGET]), rows
    assert {r["action"] for r in rows} == {"request.denied"}


# --- no token in any log line -----------------------------------------------------------------------


def secret_forms(token: str) -> list[str]:
    """A token as the log could show it: itself, and its stored hash as hex or base64."""
    digest = hashlib.sha256(token.encode()).digest()
    return [token, digest.hex(), base64.b64encode(digest).decode(), base64.urlsafe_b64encode(digest).decode()]


async def test_no_token_or_hash_in_any_log_line(server_url: str, settings: Settings) -> None:
    name, url = await pg.migrated_database(server_url, settings)
    admin_token = "tb_log_admin_" + secrets.token_urlsafe(24)
    env = {"TIMEBANK_ADMIN_TOKEN": admin_token, "TIMEBANK_LOG_LEVEL": "debug", "TIMEBANK_AUTH_FAILURES_PER_MINUTE": "3"}
    tokens = [admin_token]
    try:
        async with running_server(url, **env) as server, client_at(server, "127.0.0.10") as http:
            admin = {"Authorization": f"Bearer {admin_token}"}
            slug = "l-" + uuid.uuid4().hex[:12]
            assert (
                await http.post("/v1/communities", headers=admin, json={"slug": slug, "name": "日志"})
            ).status_code == 201
            member = await http.post(
                f"/v1/communities/{slug}/members", headers=admin, json={"display_name": "乙", "roles": ["resident"]}
            )
            issued = await http.post(f"/v1/members/{member.json()['id']}/tokens", headers=admin)
            assert issued.status_code == 201, issued.text
            member_token = issued.json()["token"]
            tokens.append(member_token)
            bearer = {"Authorization": f"Bearer {member_token}"}
            assert (await http.get("/v1/me", headers=bearer)).status_code == 200
            # Denied, refused and failed requests carrying the token.
            assert (
                await http.post("/v1/communities", headers=bearer, json={"slug": "z-" + slug, "name": "z"})
            ).status_code == 403
            assert (await http.post("/v1/redemptions", headers=bearer, json={"member_id": "x"})).status_code == 400
            assert (await http.post("/v1/redemptions", headers=bearer, content=b"{")).status_code in (400, 415)
            assert (await http.get("/nowhere", headers=bearer)).status_code == 404
            for scheme in ("Token", "Basic", "bearer  "):
                await http.get("/v1/me", headers={"Authorization": f"{scheme} {member_token}"})
            await http.get("/v1/me", params={"access_token": member_token, "token": member_token})
            # Guesses, then throttled guesses.
            for _ in range(5):
                guessed = "tb_guess_" + secrets.token_urlsafe(32)
                tokens.append(guessed)
                await http.get("/v1/me", headers={"Authorization": f"Bearer {guessed}"})
            log = server.log()
    finally:
        await pg.drop_database(server_url, name)
    assert '"status": 429' in log, "the throttle was not reached"
    leaks = [form[:16] for token in tokens for form in secret_forms(token) if form in log]
    assert not leaks, f"log lines carry tokens or their hashes: {leaks}"
    lines = [line for line in log.splitlines() if re.search(r"tb_[A-Za-z0-9_-]{20,}", line)]
    assert not lines, lines[:3]


# --- the database role of the running service -------------------------------------------------------


async def test_running_service_connects_only_as_the_service_role(server_url: str, settings: Settings) -> None:
    name, url = await pg.migrated_database(server_url, settings)
    try:
        async with running_server(url, TIMEBANK_ADMIN_TOKEN="tb_role_" + secrets.token_urlsafe(16)) as server:
            async with httpx.AsyncClient(base_url=server.url) as http:
                for _ in range(5):
                    assert (await http.get("/ready")).status_code == 200
            owner = await asyncpg.connect(url)
            try:
                sessions = await owner.fetch(
                    """
                    select usename, application_name from pg_stat_activity
                     where datname = current_database() and pid <> pg_backend_pid() and backend_type = 'client backend'
                    """
                )
                role = await owner.fetchrow(
                    "select rolsuper, rolbypassrls, rolcreaterole from pg_roles where rolname = $1",
                    settings.db_app_role,
                )
            finally:
                await owner.close()
    finally:
        await pg.drop_database(server_url, name)
    assert sessions, "the service holds no connection"
    assert {s["usename"] for s in sessions} == {settings.db_app_role}, [dict(s) for s in sessions]
    assert role is not None
    assert not any(role.values()), dict(role)
