"""Tokens can be listed and revoked; a revoked token answers 401 at once (issue 9).

Who may list and revoke is pinned by the role matrix (tests/api/test_permissions.py, rows token.list
and token.revoke); here: what the list shows and how it pages, what revocation does and keeps, that
the cache of authenticated tokens never outlives a revocation (heard from another process, or missed
while the listener was away), and that authentication notes a token's use without writing on every
request. Several processes at once: tests/e2e/test_token_revocation.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from tests.client import Api, Member
from tests.sql.support import app_connect
from timebank.auth.revocations import EVICTED_CHANNEL, LISTENER_NAME, Confirmations, RevocationListener
from timebank.auth.throttle import TokenCache

POLL_SECONDS_MAX = 10.0


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


async def issue(api: Api, member: Member) -> tuple[str, str]:
    """A new token for the member, and its id (as the member's list shows it, newest first)."""
    response = await api.post(f"/v1/members/{member.id}/tokens", api.admin_token, key=None)
    assert response.status_code == 201, response.text
    listed = await api.get(f"/v1/members/{member.id}/tokens", api.admin_token, limit=1)
    assert listed.status_code == 200, listed.text
    return response.json()["token"], listed.json()["items"][0]["id"]


async def token_id_of(owner: asyncpg.Connection, token: str) -> str:
    return str(
        await owner.fetchval("select id from tokens where token_hash = $1", hashlib.sha256(token.encode()).digest())
    )


async def revoke(api: Api, token_id: str, caller: str, key: str | None = "auto", **headers: str) -> Any:
    return await api.post(f"/v1/tokens/{token_id}/revoke", caller, key=key, **headers)


def listener_of(client: AsyncTestClient[Any]) -> RevocationListener:
    listener: RevocationListener = client.app.state.revocations
    return listener


async def listener_pid(owner: asyncpg.Connection, client: AsyncTestClient[Any], exclude: int | None = None) -> int:
    """The backend pid of the test application's subscribed listener (polled, with a bound)."""
    listener = listener_of(client)
    deadline = asyncio.get_running_loop().time() + POLL_SECONDS_MAX
    while asyncio.get_running_loop().time() < deadline:
        pid = listener.pid
        if pid is not None and pid != exclude and listener.subscribed.is_set():
            name = await owner.fetchval("select application_name from pg_stat_activity where pid = $1", pid)
            if name == LISTENER_NAME:
                return pid
        await asyncio.sleep(0.01)
    raise AssertionError("the application's revocation listener did not subscribe")


# --- the list ---------------------------------------------------------------------------------------


async def test_list_shows_ids_and_times_newest_first_never_the_secret(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    member = await api.member(community, "resident")  # issued one token
    second, second_id = await issue(api, member)
    response = await api.get(f"/v1/members/{member.id}/tokens", member.token)
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["next_cursor"] is None
    items = page["items"]
    assert [set(item) for item in items] == [{"id", "created_at", "last_used_at", "revoked_at"}] * 2
    first_id = await token_id_of(owner, member.token)
    assert [item["id"] for item in items] == [second_id, first_id]
    assert items[0]["created_at"] >= items[1]["created_at"]
    # The first token has just been used; the second never was.
    assert items[1]["last_used_at"] is not None
    assert items[0]["last_used_at"] is None
    assert all(item["revoked_at"] is None for item in items)
    stored = await owner.fetchval("select token_hash from tokens where id = $1", uuid.UUID(second_id))
    for secret in (member.token, second, stored.hex()):
        assert secret not in response.text


async def test_list_is_keyset_paged_and_stable_under_new_tokens(api: Api) -> None:
    community = await api.community()
    member = await api.member(community, "volunteer")
    for _ in range(3):
        await issue(api, member)
    path = f"/v1/members/{member.id}/tokens"
    everything = [item["id"] for item in (await api.get(path, api.admin_token)).json()["items"]]
    assert len(everything) == 4
    first = (await api.get(path, api.admin_token, limit=2)).json()
    assert [item["id"] for item in first["items"]] == everything[:2]
    assert first["next_cursor"]
    await issue(api, member)  # a new token between pages appears on neither
    second = (await api.get(path, api.admin_token, limit=2, cursor=first["next_cursor"])).json()
    assert [item["id"] for item in second["items"]] == everything[2:]
    assert second["next_cursor"] is None
    assert_problem(await api.get(path, api.admin_token, cursor="not-ours"), 422, "invalid_cursor")
    assert_problem(await api.get(path, api.admin_token, limit=0), 400, "invalid_request")


async def test_list_of_an_unknown_member_is_404(api: Api) -> None:
    assert_problem(await api.get(f"/v1/members/{uuid.uuid4()}/tokens", api.admin_token), 404, "not_found")


# --- revocation -------------------------------------------------------------------------------------


async def test_a_revoked_token_answers_401_on_the_very_next_request(api: Api) -> None:
    community = await api.community()
    coordinator = await api.member(community, "coordinator")
    member = await api.member(community, "resident")
    for _ in range(3):  # authenticated, so cached
        assert (await api.get("/v1/me", member.token)).status_code == 200
    token_id = (await api.get(f"/v1/members/{member.id}/tokens", member.token)).json()["items"][0]["id"]
    response = await revoke(api, token_id, coordinator.token)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == token_id
    assert body["revoked_at"] is not None
    assert set(body) == {"id", "created_at", "last_used_at", "revoked_at"}
    assert_problem(await api.get("/v1/me", member.token), 401, "unauthenticated")
    # The list shows it revoked; the coordinator's own token is untouched.
    listed = (await api.get(f"/v1/members/{member.id}/tokens", coordinator.token)).json()["items"]
    assert listed[0]["revoked_at"] == body["revoked_at"]
    assert (await api.get("/v1/me", coordinator.token)).status_code == 200


async def test_a_member_revokes_its_own_lost_token_with_another(api: Api) -> None:
    community = await api.community()
    member = await api.member(community, "volunteer")
    lost = member.token
    spare, _ = await issue(api, member)
    assert (await api.get("/v1/me", lost)).status_code == 200
    items = (await api.get(f"/v1/members/{member.id}/tokens", spare)).json()["items"]
    lost_id = items[-1]["id"]
    assert (await revoke(api, lost_id, spare)).status_code == 200
    assert_problem(await api.get("/v1/me", lost), 401, "unauthenticated")
    assert (await api.get("/v1/me", spare)).status_code == 200


async def test_a_token_may_revoke_itself(api: Api) -> None:
    community = await api.community()
    member = await api.member(community, "resident")
    token_id = (await api.get(f"/v1/members/{member.id}/tokens", member.token)).json()["items"][0]["id"]
    assert (await revoke(api, token_id, member.token)).status_code == 200
    assert_problem(await api.get("/v1/me", member.token), 401, "unauthenticated")
    assert_problem(await revoke(api, token_id, member.token), 401, "unauthenticated")


async def test_revoking_twice_keeps_the_first_revocation_and_audits_once(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    member = await api.member(community, "volunteer")
    _, token_id = await issue(api, member)
    first = await revoke(api, token_id, api.admin_token, **{"X-Request-ID": "rev-" + uuid.uuid4().hex})
    assert first.status_code == 200, first.text
    again = await revoke(api, token_id, api.admin_token)
    assert again.status_code == 200, again.text
    assert "idempotent-replayed" not in again.headers
    assert again.json() == first.json()
    events = await owner.fetch(
        "select * from audit_events where action = 'token.revoked' and details->>'token_id' = $1", token_id
    )
    assert len(events) == 1
    [event] = events
    admin = (await api.get("/v1/me", api.admin_token)).json()["principal_id"]
    assert event["actor"] == admin
    assert event["subject_type"] == "member"
    assert str(event["subject_id"]) == member.id
    assert event["community_id"] == uuid.UUID(community.id)
    assert event["request_id"] == first.request.headers["x-request-id"]
    # The revocation and its event were written by one transaction.
    revocation = await owner.fetchrow(
        "select xmin::text as xid, request_id from token_revocations where token_id = $1", uuid.UUID(token_id)
    )
    event_xid = await owner.fetchval("select xmin::text from audit_events where id = $1", event["id"])
    assert revocation["xid"] == event_xid
    assert revocation["request_id"] == event["request_id"]


async def test_revoke_needs_a_key_and_replays_with_it(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    member = await api.member(community, "volunteer")
    _, token_id = await issue(api, member)
    assert_problem(await revoke(api, token_id, api.admin_token, key=None), 400, "idempotency_key_required")
    assert await owner.fetchval("select count(*) from token_revocations where token_id = $1", uuid.UUID(token_id)) == 0
    key = "revoke-" + uuid.uuid4().hex
    first = await revoke(api, token_id, api.admin_token, key=key)
    assert first.status_code == 200, first.text
    again = await revoke(api, token_id, api.admin_token, key=key)
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    # The same key on another token is another request.
    _, other_id = await issue(api, member)
    assert_problem(await revoke(api, other_id, api.admin_token, key=key), 409, "idempotency_key_reused")
    assert await owner.fetchval("select count(*) from token_revocations where token_id = $1", uuid.UUID(other_id)) == 0
    # An empty object is accepted as no body; anything else in it is refused.
    assert (await api.client.post(
        f"/v1/tokens/{other_id}/revoke", json={"reason": "lost"},
        headers={"Authorization": f"Bearer {api.admin_token}", "Idempotency-Key": uuid.uuid4().hex},
    )).status_code == 400  # fmt: skip
    done = await api.client.post(
        f"/v1/tokens/{other_id}/revoke",
        json={},
        headers={"Authorization": f"Bearer {api.admin_token}", "Idempotency-Key": uuid.uuid4().hex},
    )
    assert done.status_code == 200, done.text


async def test_unknown_token_is_404(api: Api) -> None:
    assert_problem(await revoke(api, str(uuid.uuid4()), api.admin_token), 404, "not_found")


async def test_admins_and_auditors_tokens_only_by_an_admin_or_themselves(api: Api, owner: asyncpg.Connection) -> None:
    """Coordinators revoke their members' tokens, not those of the auditors the owner appointed."""
    community = await api.community()
    coordinator = await api.member(community, "coordinator")
    auditor = "tb_test_auditor_" + uuid.uuid4().hex
    await owner.fetchval(
        "select create_principal_token('auditor', $1, $2, 'test')",
        community.slug,
        hashlib.sha256(auditor.encode()).digest(),
    )
    auditor_token_id = await token_id_of(owner, auditor)
    admin_token_id = await token_id_of(owner, api.admin_token)
    assert_problem(await revoke(api, auditor_token_id, coordinator.token), 403, "forbidden")
    assert_problem(await revoke(api, admin_token_id, coordinator.token), 404, "not_found")
    assert_problem(await revoke(api, admin_token_id, auditor), 404, "not_found")
    assert (await api.get("/v1/me", auditor)).status_code == 200
    assert (await revoke(api, auditor_token_id, auditor)).status_code == 200
    assert_problem(await api.get("/v1/me", auditor), 401, "unauthenticated")


# --- the cache never outlives a revocation ---------------------------------------------------------


async def test_a_revocation_by_another_process_empties_this_ones_cache(
    api: Api, client: AsyncTestClient[Any], owner: asyncpg.Connection, database: str
) -> None:
    """As `timebank token revoke` or another worker would: the application hears it and confirms."""
    community = await api.community()
    member = await api.member(community, "volunteer")
    assert (await api.get("/v1/me", member.token)).status_code == 200
    token_id = await token_id_of(owner, member.token)
    pid = await listener_pid(owner, client)
    other = await asyncpg.connect(database, server_settings={"search_path": "timebank"})
    try:
        confirmations = Confirmations()
        await other.add_listener(EVICTED_CHANNEL, confirmations.on_notification)
        with confirmations.watching(token_id) as watch:
            row = await other.fetchrow("select * from revoke_token_as_system('test', $1)", uuid.UUID(token_id))
            assert row["revoked_now"]
            assert pid in row["listeners"]
            assert await watch.wait_for(row["listeners"], POLL_SECONDS_MAX) == set()
    finally:
        await other.close()
    assert_problem(await api.get("/v1/me", member.token), 401, "unauthenticated")


async def test_a_revocation_missed_while_the_listener_was_away_still_holds(
    api: Api, client: AsyncTestClient[Any], owner: asyncpg.Connection
) -> None:
    community = await api.community()
    member = await api.member(community, "volunteer")
    assert (await api.get("/v1/me", member.token)).status_code == 200
    token_id = await token_id_of(owner, member.token)
    # Revoked behind the service's back: no notification, so the cache still holds the token...
    await owner.execute(
        "insert into token_revocations (token_id, revoked_by, request_id) values ($1, 'test', 'test')",
        uuid.UUID(token_id),
    )
    assert (await api.get("/v1/me", member.token)).status_code == 200
    # ...until the listener's connection is lost (as in a database restart): from then on the cache
    # is not trusted, and after subscribing again it starts empty.
    pid = await listener_pid(owner, client)
    assert await owner.fetchval("select pg_terminate_backend($1)", pid)
    await listener_pid(owner, client, exclude=pid)
    assert_problem(await api.get("/v1/me", member.token), 401, "unauthenticated")
    assert (await api.get("/v1/me", api.admin_token)).status_code == 200


async def test_without_the_listener_nothing_is_cached(
    api: Api, client: AsyncTestClient[Any], owner: asyncpg.Connection
) -> None:
    community = await api.community()
    member = await api.member(community, "volunteer")
    cache: TokenCache = client.app.state.token_cache
    listener = listener_of(client)
    client.blocking_portal.call(listener.stop)
    try:
        assert not cache.trusted
        assert (await api.get("/v1/me", member.token)).status_code == 200
        await owner.execute(
            "insert into token_revocations (token_id, revoked_by, request_id) values ($1, 'test', 'test')",
            uuid.UUID(await token_id_of(owner, member.token)),
        )
        assert_problem(await api.get("/v1/me", member.token), 401, "unauthenticated")
    finally:
        client.blocking_portal.call(listener.start, POLL_SECONDS_MAX)
    assert cache.trusted


# --- last_used_at: noted on cache misses, at most once a minute -------------------------------------


@pytest.fixture
async def app_conn(database: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await app_connect(database)
    yield conn
    await conn.close()


async def test_use_is_noted_at_most_once_a_minute(
    api: Api, owner: asyncpg.Connection, app_conn: asyncpg.Connection
) -> None:
    community = await api.community()
    member = await api.member(community, "volunteer")
    digest = hashlib.sha256(member.token.encode()).digest()
    token_id = uuid.UUID(await token_id_of(owner, member.token))

    async def state() -> tuple[Any, ...]:
        row = await owner.fetchrow("select last_used_at, xmin::text as xmin from tokens where id = $1", token_id)
        return row["last_used_at"], row["xmin"]

    assert (await state())[0] is None
    [row] = await app_conn.fetch("select * from authenticate_token($1)", digest)
    assert row["token_id"] == token_id
    used = await state()
    assert used[0] is not None
    for _ in range(3):
        await app_conn.fetch("select * from authenticate_token($1)", digest)
    assert await state() == used, "authentication wrote again within the minute"
    await owner.execute("update tokens set last_used_at = last_used_at - interval '61 seconds' where id = $1", token_id)
    await app_conn.fetch("select * from authenticate_token($1)", digest)
    assert (await state())[0] > used[0] - dt.timedelta(seconds=61)


def test_cache_trusts_only_when_told_and_forgets_revoked_tokens() -> None:
    cache = TokenCache(ttl_seconds=30, max_entries=10, trusted=False)
    cache.put(b"a", "A", "token-a")
    assert cache.get(b"a") is None  # untrusted: nothing stored, nothing answered
    cache.trust()
    cache.put(b"a", "A", "token-a")
    cache.put(b"b", "B", "token-b")
    assert cache.get(b"a") == "A"
    cache.evict_token("token-a")
    assert cache.get(b"a") is None
    assert cache.get(b"b") == "B"
    cache.distrust()
    assert cache.get(b"b") is None
    cache.trust()
    assert cache.get(b"b") is None  # trusted again, but empty


def test_a_lookup_that_raced_a_revocation_is_not_cached() -> None:
    cache = TokenCache(ttl_seconds=30, max_entries=10)
    before = cache.generation
    cache.evict_token("token-a")  # heard while the lookup was in the database
    cache.put(b"a", "A", "token-a", before)
    assert cache.get(b"a") is None
    cache.put(b"a", "A", "token-a", cache.generation)
    assert cache.get(b"a") == "A"
