"""Migration 0004 on a database that already has history: clashing phones stop it plainly; otherwise it
numbers existing holds in order and names the creator in stored answers."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from tests import pg
from timebank import migrate as migrate_module
from timebank.config import Settings
from timebank.migrate import MigrationError, migrate

VERSION = "0004_names_policy"


@pytest.fixture
async def before_0004(
    settings: Settings, server_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[str]:
    """A database migrated up to, not including, 0004 (tables only: today's functions need 0004)."""
    name = "timebank_test_0004_" + uuid.uuid4().hex[:8]
    url = await pg.create_database(server_url, name)
    earlier = [m for m in migrate_module.migrations() if m.version < VERSION]
    (tmp_path / "functions").mkdir()
    (tmp_path / "grants.sql").write_text("select 1;", encoding="utf-8")
    try:
        with monkeypatch.context() as patched:
            patched.setattr(migrate_module, "migrations", lambda: earlier)
            patched.setattr(migrate_module, "FUNCTIONS_DIR", tmp_path / "functions")
            patched.setattr(migrate_module, "GRANTS_FILE", tmp_path / "grants.sql")
            assert await migrate(settings, url) == [m.version for m in earlier]
        yield url
    finally:
        await pg.drop_database(server_url, name)


async def history(url: str) -> dict[str, uuid.UUID]:
    """What a database of 0003 may hold, written directly: members sharing a phone and an external_ref,
    holds placed out of id order, and the stored answer of a credit."""
    conn = await asyncpg.connect(url, server_settings={"search_path": "timebank"})
    try:
        ids: dict[str, uuid.UUID] = {}
        ids["community"] = await conn.fetchval("insert into communities (slug, name) values ('old', '旧') returning id")
        admin = await conn.fetchval("insert into principals (kind) values ('admin') returning id")
        ids["admin"] = admin
        for name, phone, ref in (
            ("甲", "13900000001", "R-1"),
            ("乙", "13900000001", None),
            ("丙", None, "R-1"),
            ("丁", "13900000002", None),
        ):
            member = await conn.fetchval(
                "insert into members (community_id, display_name, roles, phone, external_ref, created_by)"
                " values ($1, $2, array['resident'], $3, $4, $5) returning id",
                ids["community"],
                name,
                phone,
                ref,
                admin,
            )
            ids[name] = member
            ids[f"{name}.account"] = await conn.fetchval(
                "insert into accounts (community_id, kind, member_id) values ($1, 'member', $2) returning id",
                ids["community"],
                member,
            )
        for n, at in enumerate(("2026-11-03", "2026-11-01", "2026-11-02"), start=1):
            ids[f"hold{n}"] = await conn.fetchval(
                "insert into holds (community_id, account_id, member_id, minutes, description, expires_at,"
                " created_at, created_by) values ($1, $2, $3, 15, '', '2026-12-31', $4::text::timestamptz, $5)"
                " returning id",
                ids["community"],
                ids["丁.account"],
                ids["丁"],
                at,
                admin,
            )
        answer = {"id": str(uuid.uuid4()), "kind": "credit", "postings": [], "created_by": str(admin)}
        await conn.execute(
            "insert into idempotency_keys (principal_id, key, request_hash, status_code, response)"
            " values ($1, 'old-key', '\\x00', 201, $2::text::jsonb)",
            admin,
            json.dumps(answer),
        )
        return ids
    finally:
        await conn.close()


async def test_shared_phones_stop_the_migration_until_resolved(settings: Settings, before_0004: str) -> None:
    ids = await history(before_0004)
    with pytest.raises(MigrationError) as caught:
        await migrate(settings, before_0004)
    message = str(caught.value)
    assert VERSION in message
    assert "2 phone or external_ref value(s) are shared" in message
    assert f"community old, phone shared by members {ids['甲']}, {ids['乙']}" in message
    assert f"community old, external_ref shared by members {ids['甲']}, {ids['丙']}" in message
    assert "then migrate again" in message
    assert "could not create unique index" not in message
    conn = await asyncpg.connect(before_0004, server_settings={"search_path": "timebank"})
    try:
        # Nothing of 0004 stayed: the whole migration rolled back.
        assert await conn.fetchval("select count(*) from schema_migrations where version = $1", VERSION) == 0
        assert (
            await conn.fetchval(
                "select count(*) from information_schema.columns"
                " where table_name = 'communities' and column_name = 'time_zone'"
            )
            == 0
        )
        # The operator decides who keeps each value, as the hint says; then the migration goes through.
        await conn.execute("update members set phone = null where id = $1", ids["乙"])
        await conn.execute("update members set external_ref = 'R-2' where id = $1", ids["丙"])
    finally:
        await conn.close()
    assert VERSION in await migrate(settings, before_0004)

    conn = await asyncpg.connect(before_0004, server_settings={"search_path": "timebank"})
    try:
        # Existing holds are numbered in the order they were placed.
        holds = await conn.fetch("select id from holds order by seq")
        assert [r["id"] for r in holds] == [ids["hold2"], ids["hold3"], ids["hold1"]]
        # New holds come after them.
        assert await conn.fetchval("select nextval(pg_get_serial_sequence('holds', 'seq'))") == 4
        # The stored answer names its creator, so a replay has the field every Transaction has.
        stored = json.loads(await conn.fetchval("select response::text from idempotency_keys where key = 'old-key'"))
        assert stored["created_by_name"] == "admin"
        assert await conn.fetchval("select time_zone from communities where id = $1", ids["community"]) == (
            "Asia/Shanghai"
        )
    finally:
        await conn.close()
