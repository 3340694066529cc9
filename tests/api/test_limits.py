"""Every limit is a named setting, and each holds at its edge."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import msgspec
from litestar.testing import AsyncTestClient

from tests.client import Api
from tests.sql.support import concurrent_api
from timebank.app import create_app
from timebank.config import Settings


@contextlib.asynccontextmanager
async def limited_api(settings: Settings, database: str, admin_token: str, **limits: Any) -> AsyncIterator[Api]:
    app = create_app(msgspec.structs.replace(settings, **limits), database)
    async with AsyncTestClient(app=app, raise_server_exceptions=False) as client:
        yield Api(client, admin_token)


async def test_request_body_size(settings: Settings, database: str, admin_token: str) -> None:
    async with limited_api(settings, database, admin_token, max_body_bytes=600) as api:
        community = await api.community()
        volunteer = await api.member(community, "volunteer")
        body = {"member_id": volunteer.id, "minutes": 15, "service_date": "2026-11-01", "description": ""}
        base = len(msgspec.json.encode(body))
        fits = await api.post("/v1/credits", api.admin_token, body | {"description": "x" * (600 - base)})
        assert len(fits.request.content) == 600
        assert fits.status_code == 201, fits.text
        too_big = await api.post("/v1/credits", api.admin_token, body | {"description": "x" * (601 - base)})
        assert len(too_big.request.content) == 601
        assert too_big.status_code == 413
        assert too_big.json()["code"] == "request_too_large"
        assert too_big.headers["content-type"].startswith("application/problem+json")


async def test_page_size(settings: Settings, database: str, admin_token: str) -> None:
    async with limited_api(settings, database, admin_token, page_size_default=2, page_size_max=3) as api:
        community = await api.community()
        volunteer = await api.member(community, "volunteer")
        for _ in range(4):
            assert (await api.credit(volunteer, 15)).status_code == 201
        path = f"/v1/accounts/{volunteer.account_id}/entries"
        assert len((await api.get(path, api.admin_token)).json()["items"]) == 2
        assert len((await api.get(path, api.admin_token, limit=3)).json()["items"]) == 3
        # 4 is within the schema's 1..500, so it is no malformed request: the largest page comes back.
        over = await api.get(path, api.admin_token, limit=4)
        assert over.status_code == 200, over.text
        assert len(over.json()["items"]) == 3


async def test_pool_size_bounds_connections(settings: Settings, database: str, admin_token: str) -> None:
    limited = msgspec.structs.replace(settings, pool_min_size=1, pool_max_size=2)
    # Served in this loop, so that the 24 requests really arrive together (see concurrent_api).
    async with concurrent_api(limited, database, admin_token) as api:
        community = await api.community()
        volunteers = [await api.member(community, "volunteer") for _ in range(3)]
        pool = api.app.state.db.pool
        peak = 0

        async def credit(i: int) -> Any:
            nonlocal peak
            response = await api.credit(volunteers[i % 3], 15)
            peak = max(peak, pool.get_size())
            return response

        results = await asyncio.gather(*(credit(i) for i in range(24)))
        assert [r.status_code for r in results] == [201] * 24
        assert pool.get_max_size() == 2
        assert peak == 2  # the requests overlapped, and the pool never grew past its bound


async def test_statement_timeout_answers_503_and_writes_nothing(
    settings: Settings, database: str, admin_token: str
) -> None:
    # One second: far above what an ordinary statement takes even on a busy machine, so only the
    # blocked credit meets it.
    async with limited_api(settings, database, admin_token, statement_timeout_ms=1000, conflict_retries=0) as api:
        community = await api.community()
        volunteer = await api.member(community, "volunteer")
        owner = await asyncpg.connect(database)
        try:
            async with owner.transaction():
                # Someone holds the member's account row: the credit waits past the statement timeout.
                await owner.execute("select 1 from timebank.accounts where id = $1 for update", volunteer.account_id)
                blocked = await api.post(
                    "/v1/credits",
                    api.admin_token,
                    {"member_id": volunteer.id, "minutes": 15, "service_date": "2026-11-01"},
                    key="timeout-key",
                )
            assert blocked.status_code == 503
            assert blocked.json()["code"] == "unavailable"
            assert await api.balance(volunteer.account_id) == 0
            # Nothing was remembered for the key: the retry goes through once the lock is gone.
            retry = await api.post(
                "/v1/credits",
                api.admin_token,
                {"member_id": volunteer.id, "minutes": 15, "service_date": "2026-11-01"},
                key="timeout-key",
            )
            assert retry.status_code == 201, retry.text
            assert "idempotent-replayed" not in retry.headers
            assert await api.balance(volunteer.account_id) == 15
        finally:
            await owner.close()


async def test_idempotency_key_length_edge(api: Api) -> None:
    community = await api.community()
    volunteer = await api.member(community, "volunteer")
    body = {"member_id": volunteer.id, "minutes": 15, "service_date": "2026-11-01"}
    assert (await api.post("/v1/credits", api.admin_token, body, key="k" * 200)).status_code == 201
    too_long = await api.post("/v1/credits", api.admin_token, body, key="k" * 201)
    assert too_long.status_code == 400
    assert too_long.json()["code"] == "invalid_request"
    assert await api.balance(volunteer.account_id) == 15
