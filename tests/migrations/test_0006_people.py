"""Migration 0006 on a database that already has members: each community's members are numbered in
the order they were registered, and new members continue from there."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from tests import pg
from timebank import migrate as migrate_module
from timebank.config import Settings
from timebank.migrate import migrate

VERSION = "0006_people"


@pytest.fixture
async def before_0006(
    settings: Settings, server_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[str]:
    """A database migrated up to, not including, 0006 (tables only)."""
    name = "timebank_test_0006_" + uuid.uuid4().hex[:8]
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


async def test_existing_members_are_numbered_in_registration_order(settings: Settings, before_0006: str) -> None:
    conn = await asyncpg.connect(before_0006, server_settings={"search_path": "timebank"})
    try:
        admin = await conn.fetchval("insert into principals (kind) values ('admin') returning id")
        east = await conn.fetchval("insert into communities (slug, name) values ('east', '东') returning id")
        west = await conn.fetchval("insert into communities (slug, name) values ('west', '西') returning id")
        names = []
        for community, name in ((east, "甲"), (west, "乙"), (east, "丙"), (east, "丁")):
            await conn.execute(
                "insert into members (community_id, display_name, roles, created_by)"
                " values ($1, $2, array['resident'], $3)",
                community,
                name,
                admin,
            )
            names.append(name)
    finally:
        await conn.close()
    assert VERSION in await migrate(settings, before_0006)
    conn = await asyncpg.connect(before_0006, server_settings={"search_path": "timebank"})
    try:
        rows = await conn.fetch("select display_name, member_no, pool_eligible from members order by seq")
        assert [(r["display_name"], r["member_no"], r["pool_eligible"]) for r in rows] == [
            ("甲", "000001", False),
            ("乙", "000001", False),
            ("丙", "000002", False),
            ("丁", "000003", False),
        ]
        await conn.execute(
            "insert into members (community_id, display_name, roles, created_by)"
            " values ($1, '戊', array['resident'], $2)",
            east,
            admin,
        )
        assert await conn.fetchval("select member_no from members where display_name = '戊'") == "000004"
        policy = await conn.fetchrow("select * from communities where id = $1", east)
        assert (
            policy["volunteer_min_age"],
            policy["redeem_min_age"],
            policy["gift_scope"],
            policy["pool_requires_eligibility"],
        ) == (None, None, "community", False)
    finally:
        await conn.close()
