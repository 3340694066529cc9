"""Each caller's write position on the primary (timebank/replicas/positions.py): shared by every
process, never lowered, covered by the floor when crash recovery empties the table, kept small, and
a position that could not be stored is stored before that caller's next read.

Positions need only a primary: these run on the shared test server, as the service role.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests import pg
from timebank.config import Settings
from timebank.db import Database
from timebank.replicas.positions import WritePositions

FLOOR = ""


@pytest.fixture
async def owner(fresh_db: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(fresh_db, server_settings={"search_path": "timebank"})
    yield conn
    await conn.close()


@pytest.fixture
async def database(fresh_db: str, settings: Settings) -> AsyncIterator[Database]:
    """The service role's pool, as the service uses it."""
    db = await Database.connect(settings, fresh_db)
    yield db
    await db.close()


def positions_of(database: Database) -> WritePositions:
    return WritePositions(database, timeout_seconds=5.0)


async def stored(owner: asyncpg.Connection) -> dict[str, int]:
    return {row["caller"]: int(row["lsn"]) for row in await owner.fetch("select caller, lsn from read_positions")}


async def primary_position(owner: asyncpg.Connection) -> int:
    return int(await owner.fetchval("select pg_current_wal_insert_lsn()"))


def caller() -> str:
    return str(uuid.uuid4())


async def test_a_position_is_stored_on_the_primary_for_every_process(
    database: Database, owner: asyncpg.Connection
) -> None:
    """Stored by one process's positions, read by another's: what read-your-writes across workers needs."""
    writer, reader = positions_of(database), positions_of(database)
    me = caller()
    before = await primary_position(owner)
    noted = await writer.note(me)
    assert noted is not None
    assert noted >= before
    assert (await stored(owner))[me] == noted
    required = await reader.required(me)
    assert required is not None
    assert required >= noted


async def test_a_position_is_never_lowered(database: Database, owner: asyncpg.Connection) -> None:
    """Concurrent requests of one caller may store their positions out of order: the later stays."""
    me = caller()
    await owner.execute("insert into read_positions (caller, lsn) values ($1, 'FFFF/0')", me)
    assert await positions_of(database).note(me) == int(await owner.fetchval("select 'FFFF/0'::pg_lsn"))
    assert (await stored(owner))[me] == int(await owner.fetchval("select 'FFFF/0'::pg_lsn"))


async def test_positions_emptied_as_by_a_crash_are_covered_by_the_floor(
    database: Database, owner: asyncpg.Connection
) -> None:
    """Crash recovery empties an unlogged table: the next read requires at least the primary's position
    of that moment, which is past every write acknowledged before."""
    positions = positions_of(database)
    me, stranger = caller(), caller()
    noted = await positions.note(me)
    assert noted is not None
    await owner.execute("truncate read_positions")
    after_the_crash = await primary_position(owner)
    required = await positions.required(me)
    assert required is not None
    assert required >= after_the_crash >= noted
    floor = (await stored(owner))[FLOOR]
    assert floor >= after_the_crash
    # A caller never seen (its position lost too) requires the floor; the floor stays where it was set.
    assert await positions.required(stranger) == floor


async def test_the_table_is_unlogged_and_reached_only_through_the_functions(
    database: Database, owner: asyncpg.Connection
) -> None:
    persistence = "select relpersistence::text from pg_class where oid = 'read_positions'::regclass"
    assert await owner.fetchval(persistence) == "u"
    async with database.connection() as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch("select * from read_positions")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("insert into read_positions (caller, lsn) values ('x', '0/0')")


async def test_forgetting_raises_the_floor_and_drops_the_positions_below_it(
    database: Database, owner: asyncpg.Connection
) -> None:
    """Positions every standby has replayed go, and no read may require less of them than before."""
    positions = positions_of(database)
    replayed_by_all = await primary_position(owner)
    old, new = caller(), caller()
    await owner.execute(
        "insert into read_positions (caller, lsn) values ('', '0/10'), ($1, '0/100'), ($2, 'FFFF/0')", old, new
    )
    assert await positions.forget(replayed_by_all) == 1
    after = await stored(owner)
    assert set(after) == {FLOOR, new}
    assert after[FLOOR] == replayed_by_all
    required = await positions.required(old)
    assert required is not None
    assert required >= replayed_by_all
    # The floor only rises.
    assert await positions.forget(replayed_by_all - 1) == 0
    assert (await stored(owner))[FLOOR] == replayed_by_all


async def test_a_position_that_could_not_be_stored_is_stored_before_the_next_read(
    server_url: str, fresh_db: str, database: Database, owner: asyncpg.Connection
) -> None:
    """The primary away when the write's answer leaves: the position is not stored, and this process
    reads that caller from the primary until it has stored one."""
    positions = positions_of(database)
    me = caller()
    await owner.close()
    async with pg.refusing_connections(server_url, fresh_db):
        assert await positions.note(me) is None
        assert me in positions.unstored
        assert await positions.required(me) is None  # the read goes to the primary
    conn = await asyncpg.connect(fresh_db, server_settings={"search_path": "timebank"})
    try:
        before = await primary_position(conn)
        required = await positions.required(me)
        assert required is not None
        assert required >= before
        assert (await stored(conn))[me] == required
        assert me not in positions.unstored
    finally:
        await conn.close()
