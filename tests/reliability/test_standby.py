"""The crash run's standby of the harness's own PostgreSQL: made with pg_basebackup, it streams on
after its primary is killed with SIGKILL and restarted, without being touched."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import asyncpg
import pytest

from reliability.processes import OwnPostgres
from reliability.standby import OwnStandby, caught_up

pytestmark = pytest.mark.slow


async def _one(url: str, query: str) -> object:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


async def test_the_standby_streams_on_after_its_primary_is_killed_and_restarted() -> None:
    root = Path(tempfile.mkdtemp(prefix="timebank-standby-test-", dir="/tmp"))
    primary = OwnPostgres(root)
    standby = OwnStandby(primary)
    try:
        await primary.start()
        await standby.start()
        await _one(primary.server_url, "create table written as select 1 as n")
        await caught_up(primary.server_url, standby.server_url)
        assert await _one(standby.server_url, "select pg_is_in_recovery()") is True
        assert await _one(standby.server_url, "select count(*) from written") == 1

        await primary.kill()
        await primary.restart()
        await _one(primary.server_url, "insert into written values (2)")
        await caught_up(primary.server_url, standby.server_url)
        assert await _one(standby.server_url, "select count(*) from written") == 2
        assert await _one(standby.server_url, "select pg_is_in_recovery()") is True
    finally:
        await standby.stop()
        await primary.stop()
        shutil.rmtree(root, ignore_errors=True)
