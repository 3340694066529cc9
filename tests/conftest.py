"""Test session: one real PostgreSQL, a migrated template database, and an API client.

Tests share one migrated database; each makes its own community (a random slug), so tests stay
independent without a database apiece. Tests that need a pristine database ask for `fresh_db`.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from tests import pg
from tests.client import Api
from timebank.app import create_app
from timebank.auth.bootstrap import ensure_admin_token
from timebank.config import Settings, load_settings

# Each worker holds a migrated database, an app's connection pools and, in some files, a server or
# a browser of its own: more than four workers would crowd PostgreSQL's connection slots and
# memory without making a run on a small machine any faster.
MAX_WORKERS = 4


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    return max(1, min(os.cpu_count() or 1, MAX_WORKERS))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tests first: each file runs on one worker (`--dist loadfile`), handed out in this order
    (`--no-loadscope-reorder`: xdist would otherwise hand out the files with most tests first), so
    the long files start at once, the many short ones fill in around them, and no worker is left
    alone with a long file at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--reliability-long",
        action="store_true",
        default=False,
        help="also run the long reliability runs (32 clients, 60 s, 5 service kills, 1 PostgreSQL kill, fuzz ≥2000)",
    )


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    with pg.postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def admin_token() -> str:
    return "tb_test_admin_" + secrets.token_urlsafe(24)


@pytest.fixture(scope="session")
def settings(admin_token: str) -> Settings:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMEBANK_")}
    # The suite makes many 401s from one address on purpose; the throttle has tests of its own.
    return load_settings(
        env,
        admin_token=admin_token,
        hold_expiry_interval_seconds=3600.0,
        service_request_jobs_interval_seconds=3600.0,
        log_format="json",
        auth_failures_per_minute=100_000,
    )


@pytest.fixture(scope="session")
async def database(server_url: str, settings: Settings) -> AsyncIterator[str]:
    """The owner URL of the session's migrated database."""
    name, url = await pg.migrated_database(server_url, settings)
    assert settings.admin_token is not None
    await ensure_admin_token(url, settings.admin_token)
    yield url
    await pg.drop_database(server_url, name)


@pytest.fixture
async def fresh_db(server_url: str, settings: Settings) -> AsyncIterator[str]:
    """A migrated database of the test's own; dropped afterwards."""
    name, url = await pg.migrated_database(server_url, settings)
    yield url
    await pg.drop_database(server_url, name)


@pytest.fixture(scope="session")
async def client(settings: Settings, database: str) -> AsyncIterator[AsyncTestClient[Any]]:
    app = create_app(settings, database)
    async with AsyncTestClient(app=app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def api(client: AsyncTestClient[Any], admin_token: str) -> Api:
    return Api(client, admin_token)


@pytest.fixture
async def owner(database: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection as the database owner (superuser here), for looking behind the API."""
    conn = await asyncpg.connect(database, server_settings={"search_path": "timebank"})
    yield conn
    await conn.close()


@pytest.fixture
def slug() -> str:
    return "c-" + uuid.uuid4().hex[:12]
