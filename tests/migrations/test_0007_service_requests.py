"""Migration 0007 on a database that already has history: existing communities get the six service
types, stored answers of transactions gain service_request_id (null), and the system principal exists."""

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
from timebank.migrate import migrate

VERSION = "0007_service_requests"


@pytest.fixture
async def before_0007(
    settings: Settings, server_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[str]:
    """A database migrated up to, not including, 0007 (tables only)."""
    name = "timebank_test_0007_" + uuid.uuid4().hex[:8]
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


async def test_existing_communities_get_the_six_types_and_answers_the_new_field(
    settings: Settings, before_0007: str
) -> None:
    conn = await asyncpg.connect(before_0007, server_settings={"search_path": "timebank"})
    try:
        community = await conn.fetchval("insert into communities (slug, name) values ('old', '旧') returning id")
        admin = await conn.fetchval("insert into principals (kind) values ('admin') returning id")
        answer = {"id": str(uuid.uuid4()), "kind": "credit", "postings": [], "created_by": str(admin)}
        await conn.execute(
            "insert into idempotency_keys (principal_id, key, request_hash, status_code, response)"
            " values ($1, 'k', '\\x00', 201, $2::text::jsonb)",
            admin,
            json.dumps(answer),
        )
        # Later migrations (0008, 0009, ...) follow it in the same run.
        assert VERSION in await migrate(settings, before_0007)
        types = await conn.fetch(
            "select code, name, default_minutes, active from service_types where community_id = $1 order by code",
            community,
        )
        assert {(t["code"], t["name"], t["default_minutes"], t["active"]) for t in types} == {
            ("meals", "助餐", 60, True),
            ("cleaning", "助洁", 120, True),
            ("bathing", "助浴", 60, True),
            ("medical_escort", "助医", 180, True),
            ("companionship", "陪聊", 60, True),
            ("errands", "代办", 60, True),
        }
        stored = json.loads(await conn.fetchval("select response::text from idempotency_keys where key = 'k'"))
        assert stored == answer | {"service_request_id": None}
        assert await conn.fetchval("select count(*) from principals where kind = 'system'") == 1
    finally:
        await conn.close()
