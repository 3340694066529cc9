"""Finding a PostgreSQL for the tests, and making databases on it.

Order: TIMEBANK_TEST_DATABASE_URL if set; else the server on 127.0.0.1:5432 if it answers; else an
embedded server in a temporary directory. Tests create their own databases and drop them after;
they never touch the service's data.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import asyncpg

from timebank.config import Settings
from timebank.embedded import start_embedded_server, with_database
from timebank.migrate import migrate

LOCAL_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


async def _answers(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url, timeout=3)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yield an owner URL (to its maintenance database) of a server the tests may use."""
    configured = os.environ.get("TIMEBANK_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    if asyncio.run(_answers(LOCAL_URL)):
        yield LOCAL_URL
        return
    # Under /tmp, so the unprivileged user the embedded server runs as (when we are root) can reach it.
    root = tempfile.mkdtemp(prefix="timebank-test-pg-", dir="/tmp")
    server: Any = start_embedded_server(root)
    try:
        yield with_database(server.get_uri(), "postgres")
    finally:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


async def create_database(server_url: str, name: str, template: str | None = None) -> str:
    conn = await asyncpg.connect(server_url)
    try:
        clause = f' template "{template}"' if template else ""
        await conn.execute(f'create database "{name}"{clause}')
    finally:
        await conn.close()
    return with_database(server_url, name)


async def drop_database(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'drop database if exists "{name}" with (force)')
    finally:
        await conn.close()


async def migrated_database(server_url: str, settings: Settings, prefix: str = "timebank_test") -> tuple[str, str]:
    """A new, migrated database; returns (name, owner url)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    url = await create_database(server_url, name)
    await migrate(settings, url)
    return name, url


@asynccontextmanager
async def refusing_connections(server_url: str, database_url: str) -> AsyncIterator[None]:
    """The database away for the block: new connections refused, the open ones ended (as when it is
    restarted or unreachable), and let in again afterwards."""
    name = database_url.rsplit("/", 1)[1].split("?", 1)[0]
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'alter database "{name}" allow_connections false')
        await admin.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()",
            name,
        )
        yield
    finally:
        await admin.execute(f'alter database "{name}" allow_connections true')
        await admin.close()
