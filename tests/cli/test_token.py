"""`timebank token create`: admin, member and auditor tokens printed once, stored hashed."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import uuid

import asyncpg
import pytest

from timebank.config import Settings
from timebank.db import connect_kwargs


async def _cli(database_url: str, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMEBANK_")} | {
        "TIMEBANK_DATABASE_URL": database_url
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "timebank.cli", *args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def _principal(settings: Settings, database_url: str, token: str) -> asyncpg.Record | None:
    conn = await asyncpg.connect(**connect_kwargs(settings, database_url))
    try:
        row = await conn.fetchrow("select * from authenticate($1)", hashlib.sha256(token.encode()).digest())
    finally:
        await conn.close()
    return row if row is not None and row["id"] is not None else None


@pytest.mark.slow
async def test_admin_member_and_auditor_tokens(settings: Settings, fresh_db: str) -> None:
    code, out, _ = await _cli(fresh_db, "token", "create", "--admin")
    assert code == 0
    admin_token = out.strip()
    admin = await _principal(settings, fresh_db, admin_token)
    assert admin is not None
    assert list(admin["roles"]) == ["admin"]

    conn = await asyncpg.connect(**connect_kwargs(settings, fresh_db))
    try:
        await conn.fetchval(
            "select create_community($1, 'cli', 'cli-test', '测试', null, 15, 1440, 90000, 0)", admin["id"]
        )
        member_id = await conn.fetchval(
            "select create_member($1, 'cli', 'cli-test', '周', array['volunteer'], '1', null, null, null)", admin["id"]
        )
    finally:
        await conn.close()

    code, out, _ = await _cli(fresh_db, "token", "create", "--member", str(member_id))
    assert code == 0
    member = await _principal(settings, fresh_db, out.strip())
    assert member is not None
    assert member["member_id"] == member_id

    code, out, _ = await _cli(fresh_db, "token", "create", "--auditor", "--community", "cli-test")
    assert code == 0
    auditor = await _principal(settings, fresh_db, out.strip())
    assert auditor is not None
    assert list(auditor["roles"]) == ["auditor"]
    assert auditor["community_id"] is not None

    owner = await asyncpg.connect(fresh_db)
    try:
        hashes = {bytes(r["token_hash"]) for r in await owner.fetch("select token_hash from timebank.tokens")}
        printed = [admin_token, out.strip()]
        assert all(token.encode() not in hashes for token in printed)
        assert hashlib.sha256(admin_token.encode()).digest() in hashes
    finally:
        await owner.close()


@pytest.mark.slow
async def test_unknown_member_or_community_fails_cleanly(fresh_db: str) -> None:
    code, _, err = await _cli(fresh_db, "token", "create", "--member", str(uuid.uuid4()))
    assert code == 2
    assert "no such member" in err
    code, _, err = await _cli(fresh_db, "token", "create", "--auditor", "--community", "nowhere")
    assert code == 2
    assert "no community" in err


@pytest.mark.slow
async def test_revoke_any_token_and_list_a_members(settings: Settings, fresh_db: str) -> None:
    code, out, _ = await _cli(fresh_db, "token", "create", "--admin")
    assert code == 0
    admin_token = out.strip()
    admin = await _principal(settings, fresh_db, admin_token)
    assert admin is not None
    conn = await asyncpg.connect(**connect_kwargs(settings, fresh_db))
    try:
        await conn.fetchval(
            "select create_community($1, 'cli', 'cli-rev', '测试', null, 15, 1440, 90000, 0)", admin["id"]
        )
        member_id = await conn.fetchval(
            "select create_member($1, 'cli', 'cli-rev', '周彦芳', array['resident'], '1', null, null, null)",
            admin["id"],
        )
    finally:
        await conn.close()
    tokens = []
    for _ in range(2):
        code, out, _ = await _cli(fresh_db, "token", "create", "--member", str(member_id))
        assert code == 0
        tokens.append(out.strip())
    code, out, _ = await _cli(fresh_db, "token", "create", "--auditor")
    auditor_token = out.strip()

    code, out, _ = await _cli(fresh_db, "token", "list", "--member", str(member_id))
    assert code == 0, out
    lines = out.splitlines()
    assert len(lines) == 2
    assert all(line.endswith("active") and "last used never" in line for line in lines)
    assert not any(token in out for token in tokens)
    newest, oldest = (line.split()[0] for line in lines)

    owner = await asyncpg.connect(fresh_db, server_settings={"search_path": "timebank"})
    try:

        async def token_id(token: str) -> str:
            return str(await owner.fetchval("select id from tokens where token_hash = $1", _digest(token)))

        assert oldest == await token_id(tokens[0])
        assert newest == await token_id(tokens[1])
        code, out, err = await _cli(fresh_db, "token", "revoke", oldest)
        assert code == 0, err
        assert out.startswith(f"revoked token {oldest} of member {member_id} (周彦芳, community cli-rev) at 20"), out
        assert await _principal(settings, fresh_db, tokens[0]) is None
        assert await _principal(settings, fresh_db, tokens[1]) is not None
        event = await owner.fetchrow(
            "select actor, subject_id from audit_events where action = 'token.revoked' and details->>'token_id' = $1",
            oldest,
        )
        assert event is not None
        assert event["actor"] == "system"
        assert event["subject_id"] == member_id

        code, out, _ = await _cli(fresh_db, "token", "revoke", oldest)
        assert code == 0
        assert "was already revoked" in out
        assert await owner.fetchval("select count(*) from audit_events where action = 'token.revoked'") == 1
        code, out, _ = await _cli(fresh_db, "token", "list", "--member", str(member_id))
        assert out.splitlines()[1].split()[-2] == "revoked"

        for token, kind in ((admin_token, "admin"), (auditor_token, "auditor")):
            code, out, err = await _cli(fresh_db, "token", "revoke", await token_id(token))
            assert code == 0, err
            assert f" of {kind} " in out, out
            assert await _principal(settings, fresh_db, token) is None
        assert "of every community" in out
    finally:
        await owner.close()


@pytest.mark.slow
async def test_revoking_an_unknown_token_fails_clearly(fresh_db: str) -> None:
    unknown = uuid.uuid4()
    code, out, err = await _cli(fresh_db, "token", "revoke", str(unknown))
    assert code == 2
    assert out == ""
    assert f"no token has the id {unknown}" in err
    code, _, err = await _cli(fresh_db, "token", "revoke", "not-an-id")
    assert code == 2
    assert "is not an id" in err
    code, _, err = await _cli(fresh_db, "token", "list", "--member", str(unknown))
    assert code == 2
    assert "no member has the id" in err


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
