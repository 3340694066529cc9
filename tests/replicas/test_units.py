"""The parts of read replicas that need no standby, and a connection the server closes mid-request
leaving as 'unavailable' (what a read on a standby falls back on)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from timebank.config import Settings
from timebank.db import Database
from timebank.errors import UnavailableError


async def query_killed_by_the_server(database: Database, killer: asyncpg.Connection) -> None:
    async with database.connection() as conn:
        sleeping = asyncio.ensure_future(conn.fetchval("select pg_sleep(30)"))
        await killer.fetchval("select pg_terminate_backend($1)", conn.get_server_pid())
        await sleeping


async def test_a_connection_closed_mid_request_leaves_as_unavailable(server_url: str, settings: Settings) -> None:
    """Not InterfaceError ('released back to the pool'): a read on a standby that dies falls back on this."""
    pool = await asyncpg.create_pool(server_url, min_size=1, max_size=1)
    killer = await asyncpg.connect(server_url)
    try:
        with pytest.raises(UnavailableError):
            await query_killed_by_the_server(Database(pool, settings), killer)
    finally:
        await killer.close()
        await pool.close()
