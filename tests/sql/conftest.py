"""Fixtures of the tests that drive the SQL operations directly, as the service role does."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.sql.support import Ledger, app_connect


@pytest.fixture
async def conn(database: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection as the service role, to the test's own database."""
    connection = await app_connect(database)
    yield connection
    await connection.close()


@pytest.fixture
async def ledger(conn: asyncpg.Connection, database: str) -> Ledger:
    """The operations, acting as a new admin."""
    return await Ledger.with_new_admin(conn, database)
