"""Revocation is permanent, enforced by PostgreSQL: no role, not even a superuser without switching
triggers off, can remove or edit a revocation, delete a revoked token or give it another hash."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.sql.support import Ledger, app_connect
from timebank.auth.bootstrap import ensure_admin_token


@pytest.fixture
async def app_conn(database: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await app_connect(database)
    yield conn
    await conn.close()


async def revoked_token(app_conn: asyncpg.Connection, database: str) -> uuid.UUID:
    ledger = await Ledger.with_new_admin(app_conn, database)
    community = await ledger.community()
    member = await ledger.member(community, "volunteer")
    token_id: uuid.UUID = await app_conn.fetchval("select t.id from member_tokens($1, null, 1) t", member.id)
    row = await app_conn.fetchrow(
        "select status_code from revoke_token($1, 'test', $2, '\\x00'::bytea, $3)",
        ledger.actor, uuid.uuid4().hex, token_id,
    )  # fmt: skip
    assert row is not None
    assert row["status_code"] == 200
    return token_id


def assert_refused(error: BaseException | None) -> None:
    assert isinstance(error, asyncpg.PostgresError), f"expected a trigger to refuse, got {error!r}"
    assert error.sqlstate == "TB900", (error.sqlstate, error)
    assert getattr(error, "detail", None) == "append_only"


async def attempt(conn: asyncpg.Connection, role: str, sql: str, *args: object) -> BaseException | None:
    transaction = conn.transaction()
    await transaction.start()
    try:
        if role != "superuser":
            await conn.execute(f"set local role {role}")
        await conn.execute(sql, *args)
    except asyncpg.PostgresError as exc:
        return exc
    finally:
        await transaction.rollback()
    return None


@pytest.mark.parametrize("role", ["superuser", "timebank_owner"])
@pytest.mark.parametrize(
    "statement",
    [
        "delete from token_revocations where token_id = $1",
        "update token_revocations set revoked_at = revoked_at where token_id = $1",
        "truncate token_revocations",
        "delete from tokens where id = $1",
        "update tokens set token_hash = sha256(token_hash) where id = $1",
        "update tokens set principal_id = principal_id, created_by = 'someone' where id = $1",
        "truncate tokens cascade",
    ],
)
async def test_no_role_can_undo_a_revocation(
    owner: asyncpg.Connection, app_conn: asyncpg.Connection, database: str, role: str, statement: str
) -> None:
    token_id = await revoked_token(app_conn, database)
    args = (token_id,) if "$1" in statement else ()
    assert_refused(await attempt(owner, role, statement, *args))
    assert await owner.fetchval("select count(*) from token_revocations where token_id = $1", token_id) == 1


async def test_only_last_used_at_may_change(
    owner: asyncpg.Connection, app_conn: asyncpg.Connection, database: str
) -> None:
    token_id = await revoked_token(app_conn, database)
    assert (
        await attempt(owner, "timebank_owner", "update tokens set last_used_at = now() where id = $1", token_id) is None
    )


async def test_a_revoked_admin_token_cannot_come_back_at_start(
    owner: asyncpg.Connection, app_conn: asyncpg.Connection, database: str
) -> None:
    token = "tb_test_admin_" + os.urandom(16).hex()
    await ensure_admin_token(database, token)
    digest = hashlib.sha256(token.encode()).digest()
    token_id = await owner.fetchval("select id from tokens where token_hash = $1", digest)
    await owner.fetchval("select revoked_now from revoke_token_as_system('test', $1)", token_id)
    assert (await app_conn.fetchrow("select * from authenticate($1)", digest))["id"] is None
    assert await app_conn.fetch("select * from authenticate_token($1)", digest) == []
    with pytest.raises(asyncpg.PostgresError) as caught:
        await ensure_admin_token(database, token)
    assert getattr(caught.value, "detail", None) == "conflict"
    assert "was revoked" in str(caught.value)
    assert await app_conn.fetch("select * from authenticate_token($1)", digest) == []
