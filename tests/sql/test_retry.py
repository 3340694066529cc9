"""Serialization failures and deadlocks are retried inside the service, a bounded number of times."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import msgspec
import pytest

from timebank.config import Settings
from timebank.db import Database
from timebank.errors import ConflictRetryError
from timebank.http.problems import to_domain_error


@pytest.fixture
async def db(settings: Settings, database: str) -> AsyncIterator[Database]:
    database_ = await Database.connect(msgspec.structs.replace(settings, conflict_retries=3), database)
    yield database_
    await database_.close()


async def test_transient_conflicts_are_retried(db: Database) -> None:
    attempts = 0

    async def work(conn: asyncpg.Connection) -> int:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise (asyncpg.SerializationError if attempts == 1 else asyncpg.DeadlockDetectedError)("conflict")
        value: int = await conn.fetchval("select 42")
        return value

    assert await db.run(work) == 42
    assert attempts == 3


async def test_exhausted_retries_answer_conflict_retry(db: Database) -> None:
    attempts = 0

    async def work(conn: asyncpg.Connection) -> None:
        nonlocal attempts
        attempts += 1
        await conn.fetchval("select 1")
        raise asyncpg.DeadlockDetectedError("deadlock")

    with pytest.raises(ConflictRetryError) as caught:
        await db.run(work)
    assert attempts == 4  # the first try and three retries
    error = to_domain_error(caught.value)
    assert (error.status, error.code) == (503, "conflict_retry")


async def test_other_errors_are_not_retried(db: Database) -> None:
    attempts = 0

    async def work(conn: asyncpg.Connection) -> None:
        nonlocal attempts
        attempts += 1
        await conn.execute("select 1/0")

    with pytest.raises(asyncpg.DivisionByZeroError):
        await db.run(work)
    assert attempts == 1
