"""Read-your-writes across processes (issue 13): a caller writes through one `timebank serve` and reads
at once through another (one of them with two workers), both on the same primary and standby, and
always sees its write; the monitor keeps the stored positions few; a real crash of the primary,
which empties the positions' unlogged table, leaves every read requiring at least the floor.

The standby (tests/replicas/cluster.py) shows each commit 250 ms late, so a read sent there right
after a write would miss it every time.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

import asyncpg
import httpx
import msgspec
import pytest

from tests import pg
from tests.client import Api, Member
from tests.e2e.server import Server, running_server
from tests.eventually import eventually
from tests.replicas.cluster import Pair, primary_and_standby
from timebank.config import Settings
from timebank.db import Database
from timebank.replicas.router import ReadRouter

pytestmark = pytest.mark.slow

APPLY_DELAY_MS = 250
PAIRS = 6
ROUNDS = 6


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    with primary_and_standby(apply_delay_ms=APPLY_DELAY_MS) as servers:
        yield servers


@pytest.fixture(scope="module")
async def replicated_database(pair: Pair, settings: Settings) -> tuple[str, str]:
    """The migrated database on the primary (owner URL) and the same database on the standby."""
    name, url = await pg.migrated_database(pair.primary.url, settings)
    return url, pair.standby.url_of(name)


def with_replica(settings: Settings, standby_url: str) -> Settings:
    return msgspec.structs.replace(
        settings, read_database_url=standby_url, read_check_interval_seconds=0.05, read_check_timeout_seconds=1.0
    )


@pytest.fixture
async def router(replicated_database: tuple[str, str], settings: Settings) -> AsyncIterator[ReadRouter]:
    """A process's read router on the pair, whose monitor never drops positions on its own."""
    url, standby_url = replicated_database
    primary = await Database.connect(settings, url)
    reads = await ReadRouter.open(with_replica(settings, standby_url), primary)
    reads.next_forget = math.inf
    yield reads
    await reads.close()
    await primary.close()


async def stored(conn: asyncpg.Connection) -> dict[str, int]:
    return {r["caller"]: int(r["lsn"]) for r in await conn.fetch("select caller, lsn from timebank.read_positions")}


async def standby_in_use(server: Server) -> None:
    async def listed() -> list[bool]:
        async with httpx.AsyncClient() as http:
            response = await http.get(server.url + "/ready")
        return [standby["in_use"] for standby in response.json().get("standbys", [])]

    await eventually(listed, lambda in_use: in_use == [True], what=f"{server.url} using the standby")


def standby_reads(metrics: str) -> float:
    """The reads a worker's /metrics says a standby answered."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("timebank_reads_total{") and 'target="standby"' in line
    )


async def test_a_caller_reads_its_own_writes_through_another_process(
    replicated_database: tuple[str, str], pair: Pair, admin_token: str
) -> None:
    """Coordinators credit through one server and read the statement through the other at once, many
    at a time; before each round the standby has replayed everything before it, so a server that did
    not know of the caller's last write would answer from the standby, and miss it."""
    url, standby_url = replicated_database
    env = {
        "TIMEBANK_ADMIN_TOKEN": admin_token,
        "TIMEBANK_READ_DATABASE_URL": standby_url,
        "TIMEBANK_READ_CHECK_INTERVAL_SECONDS": "0.05",
        "TIMEBANK_READ_CHECK_TIMEOUT_SECONDS": "1.0",
        "TIMEBANK_AUTH_FAILURES_PER_MINUTE": "100000",
    }
    # Pools: every coordinator's task asks at once.
    primary = await asyncpg.create_pool(url, min_size=1, max_size=PAIRS)
    standby = await asyncpg.create_pool(pair.standby.url, min_size=1, max_size=PAIRS)
    try:
        async with (
            running_server(url, **env) as one,
            running_server(url, **env, TIMEBANK_WORKERS="2") as other,
            httpx.AsyncClient(base_url=one.url) as one_http,
            httpx.AsyncClient(base_url=other.url) as other_http,
        ):
            apis = (Api(cast(Any, one_http), admin_token), Api(cast(Any, other_http), admin_token))
            await standby_in_use(one)
            await standby_in_use(other)
            community = await apis[0].community()
            coordinators = [await apis[0].member(community, "coordinator", name=f"协调员{i}") for i in range(PAIRS)]
            volunteers = [await apis[0].member(community, "volunteer", name=f"志愿者{i}") for i in range(PAIRS)]

            async def standby_replayed_everything() -> None:
                now = await primary.fetchval("select pg_current_wal_insert_lsn()")
                await eventually(
                    lambda: standby.fetchval("select pg_last_wal_replay_lsn() >= $1::pg_lsn", now),
                    interval=0.05,
                    what="the standby replaying the primary's position",
                )

            async def credit_then_read_elsewhere(coordinator: Member, volunteer: Member) -> None:
                for round_ in range(ROUNDS):
                    writer, reader = apis if round_ % 2 == 0 else apis[::-1]
                    await standby_replayed_everything()
                    credit = await writer.credit(volunteer, 15, coordinator.token)
                    assert credit.status_code == 201, credit.text
                    statement = await reader.get(
                        f"/v1/accounts/{volunteer.account_id}/entries", coordinator.token, limit=1
                    )
                    assert statement.status_code == 200, statement.text
                    newest = statement.json()["items"][0]
                    assert newest["transaction_id"] == credit.json()["id"], (
                        f"round {round_}: the other server's statement misses the caller's own credit"
                    )

            await asyncio.gather(
                *(credit_then_read_elsewhere(c, v) for c, v in zip(coordinators, volunteers, strict=True))
            )

            # The standby did answer reads: a volunteer, who wrote nothing, reads there once it is replayed.
            volunteer = volunteers[0]

            async def volunteer_reads_on_standby() -> float:
                response = await apis[1].get(f"/v1/accounts/{volunteer.account_id}/entries", volunteer.token)
                assert response.status_code == 200, response.text
                return standby_reads((await other_http.get("/metrics")).text)

            await eventually(volunteer_reads_on_standby, lambda count: count > 0, what="reads on the standby")
            logs = one.log() + other.log()
    finally:
        await primary.close()
        await standby.close()
    assert "write_position_not_stored" not in logs


async def test_the_monitor_drops_the_positions_every_standby_in_use_has_replayed(
    router: ReadRouter, replicated_database: tuple[str, str]
) -> None:
    url, _ = replicated_database
    callers = [str(uuid.uuid4()) for _ in range(3)]
    noted = [await router.note_position(caller) for caller in callers]
    assert None not in noted
    (standby,) = router.standbys

    async def checked() -> tuple[bool, int]:
        await router.check()
        return standby.in_use, standby.replay_lsn

    await eventually(checked, lambda seen: seen[0] and seen[1] >= max(cast(list[int], noted)), what="replayed")
    owner = await asyncpg.connect(url)
    try:
        before = await stored(owner)
        replayed = standby.replay_lsn
        forgotten = await router.forget_replayed_writes()
        after = await stored(owner)
    finally:
        await owner.close()
    assert forgotten == len([c for c, lsn in before.items() if c and lsn <= replayed]) >= len(callers)
    assert not set(callers) & set(after)
    assert after[""] >= replayed
    for caller, lsn in zip(callers, cast(list[int], noted), strict=True):
        required = await router.required_lsn(caller)
        assert required is not None
        assert required >= lsn


async def test_positions_lost_in_a_crash_of_the_primary_are_covered_by_the_floor(
    router: ReadRouter, replicated_database: tuple[str, str], pair: Pair
) -> None:
    """Crash recovery empties the unlogged table: the next read requires the primary's position after
    recovery, past every write acknowledged before the crash. (Last here: it stops the primary.)"""
    url, _ = replicated_database
    me = str(uuid.uuid4())
    noted = await router.note_position(me)
    assert noted is not None
    await asyncio.to_thread(pair.primary.kill)
    await asyncio.to_thread(pair.primary.start)
    superuser = await asyncpg.connect(url)
    try:
        assert await stored(superuser) == {}, "crash recovery left the unlogged table as it was"
        after_the_crash = int(await superuser.fetchval("select pg_current_wal_insert_lsn()"))
    finally:
        await superuser.close()
    # The router's pooled connections died with the server: a read meanwhile goes to the primary.
    required = await eventually(lambda: router.required_lsn(me), lambda lsn: lsn is not None, what="a position")
    assert required is not None
    assert required >= after_the_crash > noted
