"""Driving the SQL operations directly, as the service role does, without the HTTP layer."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import asyncpg
import httpx
from litestar import Litestar

from tests.client import Api
from timebank.app import create_app
from timebank.auth.bootstrap import create_principal
from timebank.config import Settings

APP_ROLE = "timebank_app"
SERVICE_DATE = dt.date(2026, 11, 1)
# Commits need not wait for the disk in tests; durability is not what they check.
SESSION_SETTINGS = {"search_path": "timebank", "synchronous_commit": "off"}

# The operations that move hours, with the SQL types of their arguments after the common four
# (actor, request id, Idempotency-Key, request hash).
OPERATIONS: dict[str, tuple[str, ...]] = {
    "post_credit": ("uuid", "bigint", "date", "text"),
    "post_redemption": ("uuid", "bigint", "text", "uuid"),
    "post_transfer": ("uuid", "uuid", "boolean", "bigint", "text"),
    "post_pool_grant": ("uuid", "bigint", "text"),
    "reverse_transaction": ("uuid", "text"),
    "place_hold": ("uuid", "bigint", "text", "timestamptz"),
    "capture_hold": ("uuid", "bigint", "uuid"),
    "release_hold": ("uuid",),
    # Service requests (70_service_requests.sql).
    "create_service_request": ("uuid", "text", "bigint", "timestamptz", "text", "text"),
    "assign_service_request": ("uuid", "uuid"),
    "check_in_service_request": ("uuid",),
    "report_service_request": ("uuid", "bigint"),
    "confirm_service_request": ("uuid", "integer", "text", "bigint"),
    "dispute_service_request": ("uuid", "text"),
    "cancel_service_request": ("uuid", "text"),
}


async def app_connect(url: str) -> asyncpg.Connection:
    """A connection as the service role to the database that the owner URL names."""
    return await asyncpg.connect(url, user=APP_ROLE, server_settings=SESSION_SETTINGS)


async def owner_connect(url: str) -> asyncpg.Connection:
    """A connection as the owner URL's user (a superuser in the tests)."""
    return await asyncpg.connect(url, server_settings=SESSION_SETTINGS)


class ServedApi(Api):
    """An Api on an application served in this event loop."""

    def __init__(self, client: httpx.AsyncClient, admin_token: str, app: Litestar) -> None:
        super().__init__(cast(Any, client), admin_token)
        self.app = app

    def pool_size(self) -> int:
        """Connections the application's pool has opened: more than its minimum means requests overlapped."""
        size: int = self.app.state.db.pool.get_size()
        return size


@asynccontextmanager
async def concurrent_api(settings: Settings, database: str, admin_token: str) -> AsyncIterator[ServedApi]:
    """The HTTP API served in the test's own event loop, so that requests sent together run together.

    Litestar's AsyncTestClient hands each request to a portal thread and blocks the caller's loop
    until it is answered, which serialises requests sent with asyncio.gather. httpx's ASGI transport
    calls the application directly, in this loop.
    """
    app = create_app(settings, database)
    started, stopping = asyncio.Event(), asyncio.Event()

    # The lifespan is entered and left in a task of its own: pytest-asyncio may tear a fixture down
    # in another task than set it up, and the lifespan's cancel scope must be left where it was entered.
    async def serve() -> None:
        async with app.lifespan():
            started.set()
            await stopping.wait()

    server = asyncio.create_task(serve())
    ready = asyncio.create_task(started.wait())
    await asyncio.wait({server, ready}, return_when=asyncio.FIRST_COMPLETED)
    if server.done():
        ready.cancel()
        server.result()  # the start-up failure
        raise RuntimeError("the application stopped during start-up")
    try:
        transport = httpx.ASGITransport(app=cast(Any, app), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield ServedApi(client, admin_token, app)
    finally:
        stopping.set()
        await server


def request_hash(*parts: object) -> bytes:
    return hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).digest()


@dataclass(frozen=True)
class Community:
    id: uuid.UUID
    slug: str
    issuance: uuid.UUID
    pool: uuid.UUID
    services: uuid.UUID


@dataclass(frozen=True)
class Member:
    id: uuid.UUID
    account_id: uuid.UUID
    principal_id: uuid.UUID


@dataclass(frozen=True)
class Result:
    status_code: int
    body: dict[str, Any]
    replayed: bool


class Ledger:
    """The SQL operations, called on one service-role connection by one acting principal."""

    def __init__(self, conn: asyncpg.Connection, actor: uuid.UUID) -> None:
        self.conn = conn
        self.actor = actor

    @classmethod
    async def with_new_admin(cls, conn: asyncpg.Connection, owner_url: str) -> Ledger:
        """A Ledger acting as a new admin; minting admins takes the owner's connection."""
        admin = await create_principal(owner_url, "admin", None, "tb_test_" + os.urandom(16).hex())
        return cls(conn, admin)

    def acting_as(self, actor: uuid.UUID, conn: asyncpg.Connection | None = None) -> Ledger:
        return Ledger(conn or self.conn, actor)

    async def community(
        self,
        unit_minutes: int = 15,
        max_transaction_minutes: int = 1440,
        max_balance_minutes: int = 90000,
        overdraft_minutes: int = 0,
        slug: str | None = None,
        time_zone: str = "Asia/Shanghai",
    ) -> Community:
        slug = slug or "s-" + uuid.uuid4().hex[:12]
        community_id = await self.conn.fetchval(
            "select create_community($1, $2, $3, $4, null, $5, $6, $7, $8, $9)",
            self.actor,
            "test-" + uuid.uuid4().hex,
            slug,
            f"社区 {slug}",
            unit_minutes,
            max_transaction_minutes,
            max_balance_minutes,
            overdraft_minutes,
            time_zone,
        )
        rows = await self.conn.fetch("select kind, id from accounts where community_id = $1", community_id)
        kinds = {r["kind"]: r["id"] for r in rows}
        return Community(community_id, slug, kinds["issuance"], kinds["pool"], kinds["services"])

    async def member(self, community: Community, *roles: str) -> Member:
        member_id = await self.conn.fetchval(
            "select create_member($1, $2, $3, '周彦芳', $4, '1', null, null, null)",
            self.actor,
            "test-" + uuid.uuid4().hex,
            community.slug,
            list(roles or ("volunteer", "resident")),
        )
        principal_id = await self.conn.fetchval(
            "select issue_member_token($1, $2, $3, $4)",
            self.actor,
            "test-" + uuid.uuid4().hex,
            member_id,
            os.urandom(32),
        )
        account_id = await self.conn.fetchval("select id from accounts where member_id = $1", member_id)
        return Member(member_id, account_id, principal_id)

    async def call(self, function: str, *args: Any, key: str | None = None, digest: bytes | None = None) -> Result:
        """Call one operation; raises asyncpg errors (SQLSTATE TB000, DETAIL the code) on a broken rule."""
        types = OPERATIONS[function]
        assert len(args) == len(types), (function, args)
        casts = ", ".join(f"${i + 5}::{t}" for i, t in enumerate(types))
        key = key or uuid.uuid4().hex
        digest = digest or request_hash(function, *args)
        row = await self.conn.fetchrow(
            f"select status_code, body::text as body, replayed from {function}($1, $2, $3, $4, {casts})",
            self.actor,
            "test-" + uuid.uuid4().hex,
            key,
            digest,
            *args,
        )
        assert row is not None
        return Result(row["status_code"], json.loads(row["body"]), row["replayed"])

    async def credit(self, member: Member, minutes: int, **kw: Any) -> Result:
        return await self.call("post_credit", member.id, minutes, SERVICE_DATE, "served", **kw)

    async def redeem(self, member: Member, minutes: int, provider: Member | None = None, **kw: Any) -> Result:
        return await self.call("post_redemption", member.id, minutes, "meal", provider.id if provider else None, **kw)

    async def gift(self, sender: Member, recipient: Member, minutes: int, **kw: Any) -> Result:
        return await self.call("post_transfer", sender.id, recipient.id, False, minutes, "gift", **kw)

    async def donate(self, sender: Member, minutes: int, **kw: Any) -> Result:
        return await self.call("post_transfer", sender.id, None, True, minutes, "donation", **kw)

    async def grant(self, member: Member, minutes: int, **kw: Any) -> Result:
        return await self.call("post_pool_grant", member.id, minutes, "grant", **kw)

    async def reverse(self, transaction_id: uuid.UUID | str, **kw: Any) -> Result:
        return await self.call("reverse_transaction", uuid.UUID(str(transaction_id)), "mistake", **kw)

    async def hold(self, member: Member, minutes: int, expires_at: Any = None, **kw: Any) -> Result:
        expires_at = expires_at or dt.datetime.now(dt.UTC) + dt.timedelta(days=14)
        return await self.call("place_hold", member.id, minutes, "booked", expires_at, **kw)

    async def capture(
        self, hold_id: uuid.UUID | str, minutes: int | None = None, provider: Member | None = None, **kw: Any
    ) -> Result:
        return await self.call(
            "capture_hold", uuid.UUID(str(hold_id)), minutes, provider.id if provider else None, **kw
        )

    async def release(self, hold_id: uuid.UUID | str, **kw: Any) -> Result:
        return await self.call("release_hold", uuid.UUID(str(hold_id)), **kw)

    async def balance(self, account_id: uuid.UUID) -> int:
        value: int = await self.conn.fetchval("select balance_minutes from accounts where id = $1", account_id)
        return value
