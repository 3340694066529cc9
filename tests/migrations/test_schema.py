"""Migrations: sql/schema.sql is exactly what they build; running them again, or twice at once, is safe."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest

from tests import pg
from timebank.config import Settings
from timebank.migrate import MigrationError, migrate
from timebank.schema import fingerprint

ROOT = Path(__file__).resolve().parents[2]


async def _fingerprint(url: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        return await fingerprint(conn)
    finally:
        await conn.close()


async def test_schema_sql_is_what_migrations_build(server_url: str, fresh_db: str) -> None:
    name = "timebank_test_schema_" + uuid.uuid4().hex[:8]
    url = await pg.create_database(server_url, name)
    try:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute((ROOT / "sql" / "schema.sql").read_text(encoding="utf-8"))
        finally:
            await conn.close()
        from_schema = await _fingerprint(url)
        from_migrations = await _fingerprint(fresh_db)
    finally:
        await pg.drop_database(server_url, name)
    missing = sorted(set(from_migrations) - set(from_schema))
    extra = sorted(set(from_schema) - set(from_migrations))
    assert not missing, ("sql/schema.sql lacks these; run scripts/dump_schema.py", missing)
    assert not extra, ("sql/schema.sql has these the migrations do not build", extra)
    assert len(from_schema) > 100


async def test_migrate_twice_is_a_no_op(settings: Settings, fresh_db: str) -> None:
    before = await _fingerprint(fresh_db)
    assert await migrate(settings, fresh_db) == []
    assert await _fingerprint(fresh_db) == before


async def test_concurrent_migrations_apply_once(settings: Settings, server_url: str) -> None:
    name = "timebank_test_race_" + uuid.uuid4().hex[:8]
    url = await pg.create_database(server_url, name)
    try:
        results = await asyncio.gather(*(migrate(settings, url) for _ in range(4)))
        assert sorted(len(r) for r in results) == [0, 0, 0, len(results[0]) or len(max(results, key=len))]
        conn = await asyncpg.connect(url)
        try:
            count = await conn.fetchval("select count(*) from timebank.schema_migrations")
        finally:
            await conn.close()
        assert count == len(max(results, key=len)) > 0
    finally:
        await pg.drop_database(server_url, name)


@pytest.mark.slow
async def test_two_migrate_processes_at_once(server_url: str) -> None:
    name = "timebank_test_procs_" + uuid.uuid4().hex[:8]
    url = await pg.create_database(server_url, name)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIMEBANK_")} | {"TIMEBANK_DATABASE_URL": url}
        command = [sys.executable, "-m", "timebank.cli", "migrate"]
        procs = [
            await asyncio.create_subprocess_exec(*command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(2)
        ]
        outputs = [await asyncio.wait_for(p.communicate(), 60) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outputs
        printed = sorted(out.decode() for out, _ in outputs)
        assert "already current" in printed[0]
        assert "0001_ledger" in printed[1]
    finally:
        await pg.drop_database(server_url, name)


async def test_edited_migration_is_refused(settings: Settings, fresh_db: str) -> None:
    conn = await asyncpg.connect(fresh_db)
    try:
        await conn.execute("update timebank.schema_migrations set checksum = 'edited' where version = '0001_ledger'")
    finally:
        await conn.close()
    with pytest.raises(MigrationError, match="0001_ledger"):
        await migrate(settings, fresh_db)
