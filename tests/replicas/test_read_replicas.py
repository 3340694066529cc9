"""Read replicas on a real standby (issue 13): a caller always reads its own writes, a killed standby
leaves every read on the primary without a 5xx, and a standby that comes back is used again.

The standby is PostgreSQL's own streaming replication (`pg_basebackup -R`) of a primary these tests
start (tests/replicas/cluster.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from tests import pg
from tests.client import Api, Community, Member
from tests.eventually import eventually
from tests.pages.member_helpers import as_person, form_of, person
from tests.replicas.cluster import Pair, primary_and_standby
from timebank.app import create_app
from timebank.auth.bootstrap import ensure_admin_token
from timebank.config import Settings
from timebank.replicas.metrics import ReplicaMetrics

pytestmark = pytest.mark.slow

PAIRS = 8
ROUNDS = 5
# The standby shows each commit this much later: a read right after a write that went to it would
# miss the write every time, so these tests fail whenever read-your-writes does not hold.
APPLY_DELAY_MS = 250


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    with primary_and_standby(apply_delay_ms=APPLY_DELAY_MS) as servers:
        yield servers


def with_replica(settings: Settings, standby_url: str, **limits: float) -> Settings:
    """The session's settings with the standby as read replica, checked every 50 ms."""
    changes: dict[str, Any] = {"read_check_interval_seconds": 0.05, "read_check_timeout_seconds": 1.0} | limits
    return msgspec.structs.replace(settings, read_database_url=standby_url, **changes)


@pytest.fixture(scope="module")
async def replicated_client(
    replicated_database: tuple[str, str], settings: Settings
) -> AsyncIterator[AsyncTestClient[Any]]:
    """The service on the primary, with the standby as its read replica."""
    url, standby_url = replicated_database
    app = create_app(with_replica(settings, standby_url), url, run_jobs=False)
    async with AsyncTestClient(app=app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
async def replicated_database(pair: Pair, settings: Settings) -> tuple[str, str]:
    """The migrated database on the primary (owner URL) and the same database on the standby."""
    name, url = await pg.migrated_database(pair.primary.url, settings)
    assert settings.admin_token is not None
    await ensure_admin_token(url, settings.admin_token)
    return url, pair.standby.url_of(name)


@pytest.fixture
def rapi(replicated_client: AsyncTestClient[Any], admin_token: str) -> Api:
    return Api(replicated_client, admin_token)


def metrics_of(api: Api) -> ReplicaMetrics:
    reads = api.client.app.state.reads
    assert reads is not None
    metrics: ReplicaMetrics = reads.metrics
    return metrics


def standby_reads(api: Api) -> float:
    return metrics_of(api).total("timebank_reads_total", target="standby")


async def standbys(api: Api) -> list[dict[str, Any]]:
    response = await api.client.get("/ready")
    assert response.status_code == 200, response.text
    listed: list[dict[str, Any]] = response.json()["standbys"]
    return listed


async def standby_in_use(api: Api, in_use: bool) -> list[dict[str, Any]]:
    return await eventually(
        lambda: standbys(api),
        lambda listed: [s["in_use"] for s in listed] == [in_use],
        what=f"/ready listing the standby with in_use {in_use}",
    )


async def test_ready_lists_the_standby_without_credentials(rapi: Api, pair: Pair) -> None:
    (standby,) = await standby_in_use(rapi, True)
    assert standby["name"].startswith(f"127.0.0.1:{pair.standby.port}/")
    assert standby["state"] == "in_use"
    assert "postgres@" not in str(standby)
    metrics = (await rapi.client.get("/metrics")).text
    assert f'timebank_standby_in_use{{standby="{standby["name"]}"}} 1' in metrics


async def test_each_caller_reads_its_own_writes_under_concurrent_writes(rapi: Api) -> None:
    """Many coordinators credit at once, each reading the statement right after each of its credits:
    every statement holds the credit just made, whether the standby or the primary answered it."""
    await standby_in_use(rapi, True)
    community = await rapi.community()
    coordinators = [await rapi.member(community, "coordinator", name=f"协调员{i}") for i in range(PAIRS)]
    volunteers = [await rapi.member(community, "volunteer", name=f"志愿者{i}") for i in range(PAIRS)]
    before = standby_reads(rapi)
    statuses: list[int] = []

    async def credit_then_read(coordinator: Member, volunteer: Member) -> None:
        for _ in range(ROUNDS):
            credit = await rapi.credit(volunteer, 15, coordinator.token)
            statuses.append(credit.status_code)
            assert credit.status_code == 201, credit.text
            statement = await rapi.get(f"/v1/accounts/{volunteer.account_id}/entries", coordinator.token, limit=3)
            statuses.append(statement.status_code)
            assert statement.status_code == 200, statement.text
            newest = statement.json()["items"][0]
            assert newest["transaction_id"] == credit.json()["id"], "the statement misses the caller's own credit"
            account = await rapi.get(f"/v1/accounts/{volunteer.account_id}", coordinator.token)
            assert account.json()["balance_minutes"] == newest["balance_after_minutes"]

    await asyncio.gather(*(credit_then_read(c, v) for c, v in zip(coordinators, volunteers, strict=True)))
    assert all(status < 500 for status in statuses)
    # The standby answered reads (not everything fell back to the primary): a volunteer, who wrote
    # nothing, reads its statement there once the monitor has seen the standby replay the credits.
    volunteer = volunteers[0]

    async def volunteer_reads_on_standby() -> float:
        response = await rapi.get(f"/v1/accounts/{volunteer.account_id}/entries", volunteer.token)
        assert response.status_code == 200, response.text
        return standby_reads(rapi)

    await eventually(volunteer_reads_on_standby, lambda count: count > before, what="reads on the standby")


async def read_everything(api: Api, community: Community, coordinator: Member, volunteer: Member) -> list[int]:
    """One round of lag-tolerant reads: a statement, an account, lists, a report, a public log proof
    (anonymous); their statuses."""
    responses = await asyncio.gather(
        api.get(f"/v1/accounts/{volunteer.account_id}/entries", volunteer.token),
        api.get(f"/v1/accounts/{volunteer.account_id}", coordinator.token),
        api.get(f"/v1/communities/{community.slug}/members", coordinator.token),
        api.get(f"/v1/communities/{community.slug}/transactions", coordinator.token),
        api.get(f"/v1/communities/{community.slug}/reports/monthly", coordinator.token, month="2026-11"),
        api.get("/v1/me", volunteer.token),
        api.get("/v1/log/consistency", None, first=0, second=0),
    )
    return [response.status_code for response in responses]


async def test_a_killed_standby_leaves_reads_on_the_primary_and_is_used_again_after(rapi: Api, pair: Pair) -> None:
    await standby_in_use(rapi, True)
    community = await rapi.community()
    coordinator = await rapi.member(community, "coordinator")
    volunteer = await rapi.member(community, "volunteer")
    assert (await rapi.credit(volunteer, 30, coordinator.token)).status_code == 201
    statuses: list[int] = []
    stop = asyncio.Event()

    async def keep_reading() -> None:
        while not stop.is_set():
            statuses.extend(await read_everything(rapi, community, coordinator, volunteer))
            # Writes go on while the standby is away, and the writer reads them back at once.
            credit = await rapi.credit(volunteer, 15, coordinator.token)
            statuses.append(credit.status_code)
            statement = await rapi.get(f"/v1/accounts/{volunteer.account_id}/entries", coordinator.token, limit=1)
            statuses.append(statement.status_code)
            assert statement.json()["items"][0]["transaction_id"] == credit.json()["id"]

    reader = asyncio.create_task(keep_reading())
    try:
        await eventually(lambda: len(statuses) > 20, what="reads before the kill")
        await asyncio.to_thread(pair.standby.kill)
        (down,) = await standby_in_use(rapi, False)
        assert down["state"] == "down", down
        assert metrics_of(rapi).total("timebank_standby_skipped_total", reason="down") >= 1
        during = len(statuses)
        await eventually(lambda: len(statuses) > during + 20, what="reads while the standby is down")
        # The standby comes back, catches up by streaming, and reads go to it again.
        await asyncio.to_thread(pair.standby.start)
        await standby_in_use(rapi, True)
        used = standby_reads(rapi)
        await eventually(lambda: standby_reads(rapi), lambda count: count > used, what="reads on the standby again")
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(reader, timeout=30)
    assert statuses, "no reads were made"
    assert all(status < 500 for status in statuses), sorted(set(statuses))
    assert set(statuses) <= {200, 201}, sorted(set(statuses))


async def test_without_credentials_checked_reads_stay_on_the_primary(rapi: Api) -> None:
    """A request whose token is not known (wrong) is refused by the primary; nothing reaches a standby."""
    response = await rapi.get(f"/v1/accounts/{uuid.uuid4()}", "tb_unknown_token")
    assert response.status_code == 401


async def ask_for_meals(pages: AsyncTestClient[Any]) -> None:
    """The /ask page's three steps (choose, review, send), as a resident's browser sends them."""
    chosen = await pages.get("/ask?type=meals")
    assert chosen.status_code == 200, chosen.text
    day = re.search(r'name="day" type="date" required value="([0-9-]+)"', chosen.text)
    assert day
    review = await pages.post("/ask", data=form_of(chosen.text, day=day.group(1), time="10:00", minutes="60"))
    assert review.status_code == 200, review.text
    done = await pages.post("/ask", data=form_of(review.text))
    assert done.status_code == 200, done.text


async def test_a_page_shows_the_residents_own_request_at_once(
    replicated_client: AsyncTestClient[Any], rapi: Api
) -> None:
    """Page data is read on the standby too, and a page after the resident's own form shows what it sent."""
    await standby_in_use(rapi, True)
    community = await rapi.community()
    resident = await person(rapi, community, "resident", "volunteer", name="周桂兰", minutes=300)
    pages = replicated_client
    follow = pages.follow_redirects
    pages.follow_redirects = False
    try:
        await as_person(pages, resident)
        for asked in range(1, 4):
            await ask_for_meals(pages)
            mine = await pages.get("/my-requests")
            assert mine.status_code == 200, mine.text
            assert mine.text.count('href="/my-requests/') == asked, "the page misses the resident's own request"
        used = standby_reads(rapi)

        async def me_page_on_standby() -> float:
            assert (await pages.get("/me")).status_code == 200
            return standby_reads(rapi)

        await eventually(me_page_on_standby, lambda count: count > used, what="page reads on the standby")
    finally:
        pages.cookies.clear()
        pages.follow_redirects = follow


async def test_a_standby_far_behind_is_skipped_until_it_catches_up(
    replicated_database: tuple[str, str], settings: Settings, pair: Pair, rapi: Api
) -> None:
    """Replay paused on the standby while writes go on: past the lag bound it is out of use (/ready
    says behind), reads stay whole on the primary; replay resumed, it is used again."""
    url, standby_url = replicated_database
    app = create_app(with_replica(settings, standby_url, read_max_lag_seconds=1.0), url, run_jobs=False)
    community = await rapi.community()
    coordinator = await rapi.member(community, "coordinator")
    volunteer = await rapi.member(community, "volunteer")
    superuser = await asyncpg.connect(pair.standby.url)
    async with AsyncTestClient(app=app, raise_server_exceptions=False) as client:
        api = Api(client, rapi.admin_token)

        async def write_and_read() -> list[dict[str, Any]]:
            credit = await api.credit(volunteer, 15, coordinator.token)
            assert credit.status_code == 201, credit.text
            statement = await api.get(f"/v1/accounts/{volunteer.account_id}/entries", coordinator.token, limit=1)
            assert statement.status_code == 200, statement.text
            assert statement.json()["items"][0]["transaction_id"] == credit.json()["id"]
            return await standbys(api)

        await standby_in_use(api, True)
        await superuser.execute("select pg_wal_replay_pause()")
        try:
            (behind,) = await eventually(
                write_and_read, lambda listed: listed[0]["state"] == "behind", interval=0.1, what="a standby behind"
            )
            assert behind["in_use"] is False
            assert behind["lag_seconds"] > 1.0
            assert metrics_of(api).total("timebank_standby_skipped_total", standby=behind["name"], reason="behind") >= 1
        finally:
            await superuser.execute("select pg_wal_replay_resume()")
            await superuser.close()
        await standby_in_use(api, True)


async def test_a_standby_with_no_free_connection_is_passed_over_but_stays_in_use(
    replicated_database: tuple[str, str], settings: Settings, rapi: Api
) -> None:
    """A pool busy with reads is not a standby down: the read goes to the primary at once after the
    wait, and the monitor, on a connection of its own, keeps the standby in use."""
    url, standby_url = replicated_database
    limits = {"read_pool_max_size": 1, "read_check_timeout_seconds": 0.3}
    app = create_app(with_replica(settings, standby_url, **limits), url, run_jobs=False)
    community = await rapi.community()
    volunteer = await rapi.member(community, "volunteer")
    async with AsyncTestClient(app=app, raise_server_exceptions=False) as client:
        api = Api(client, rapi.admin_token)
        await standby_in_use(api, True)
        (standby,) = app.state.reads.standbys
        pool = standby.database.pool
        # The test client runs the app in an event loop of its own: hold the pool's only connection there.
        app_loop = pool._loop

        def in_app_loop(coroutine: Any) -> Any:
            return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, app_loop))

        async def take() -> Any:
            return await pool.acquire()

        held = await in_app_loop(take())
        try:
            statement = await api.get(f"/v1/accounts/{volunteer.account_id}/entries", volunteer.token)
            assert statement.status_code == 200, statement.text
            assert metrics_of(api).total("timebank_read_fallbacks_total", reason="standby_slow") >= 1
            assert [s["state"] for s in await standbys(api)] == ["in_use"]
        finally:
            await in_app_loop(pool.release(held))
        assert metrics_of(api).total("timebank_standby_skipped_total", standby=standby.name, reason="down") == 0
