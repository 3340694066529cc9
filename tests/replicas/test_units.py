"""The parts of read replicas that need no standby: settings (with any number of workers), lag in
time, names without secrets, and a connection the server closes mid-request leaving as
'unavailable' (what a read falls back on)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from timebank.config import Settings, load_settings
from timebank.db import Database
from timebank.errors import UnavailableError
from timebank.replicas.standby import PrimaryPositions, display_name


def test_read_database_url_takes_several_standbys_and_hides_them() -> None:
    settings = load_settings(
        {"TIMEBANK_READ_DATABASE_URL": "postgresql://u:secret@a:5433/tb, postgresql://u:secret@b/tb ,"}
    )
    assert settings.read_database_urls == ("postgresql://u:secret@a:5433/tb", "postgresql://u:secret@b/tb")
    assert "secret" not in repr(settings)
    assert load_settings({}).read_database_urls == ()


def test_read_replicas_with_several_workers_are_accepted() -> None:
    """Each caller's last write position is kept on the primary, where every worker finds it."""
    settings = load_settings({"TIMEBANK_READ_DATABASE_URL": "postgresql://a/tb", "TIMEBANK_WORKERS": "4"})
    assert settings.workers == 4
    assert settings.read_database_urls == ("postgresql://a/tb",)


def test_display_name_never_shows_user_or_password() -> None:
    assert display_name("postgresql://app:pw@standby-1:5433/timebank?sslmode=require") == "standby-1:5433/timebank"
    assert display_name("postgresql://standby") == "standby:5432/-"


def test_lag_in_seconds_is_since_the_first_position_not_replayed() -> None:
    positions = PrimaryPositions(keep_seconds=60)
    assert positions.lag_seconds(0, now=0) is None
    positions.add(100, at=10.0)
    positions.add(200, at=11.0)
    positions.add(300, at=12.0)
    assert positions.lag_seconds(300, now=20.0) == 0.0  # all replayed: an idle primary is no lag
    assert positions.lag_seconds(250, now=20.0) == 8.0  # behind since the primary passed 250, at 12
    assert positions.lag_seconds(50, now=20.0) == 10.0
    positions.add(300, at=80.0)  # older samples fall out of the window
    assert [lsn for _, lsn in positions.samples] == [300]


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
