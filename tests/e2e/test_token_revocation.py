"""A revoked token answers 401 at once, on every worker process of the real server.

The server runs with TIMEBANK_WORKERS=2 and a token cache that would trust a token for an hour.
Each token is first warmed into the workers' caches by many requests on new connections (which the
kernel hands to either worker), then revoked (through the API, which one worker handles, or with
`timebank token revoke` from outside), and every one of the requests that follow answers 401. A
control token, revoked behind the service's back (no notification), keeps answering 200 from the
caches: without the notifications, the revoked tokens would have too.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from tests.e2e.server import Server, running_server
from timebank.auth.revocations import LISTENER_NAME

pytestmark = pytest.mark.slow

WORKERS = 2
WARM_REQUESTS = 60
FOLLOWING_REQUESTS = 60
CONCURRENCY = 12
POLL_SECONDS_MAX = 30.0


async def statuses(server: Server, token: str, count: int) -> list[int]:
    """GET /v1/me `count` times, each on a new connection, several at once (so both workers take some)."""
    limits = httpx.Limits(max_keepalive_connections=0, max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=30) as http:
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one() -> int:
            async with gate:
                response = await http.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
                return response.status_code

        return list(await asyncio.gather(*(one() for _ in range(count))))


async def subscribed_listeners(owner: asyncpg.Connection) -> int:
    count: int = await owner.fetchval(
        "select count(*) from pg_stat_activity where datname = current_database() and application_name = $1",
        LISTENER_NAME,
    )
    return count


async def cli(database_url: str, *args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMEBANK_")} | {
        "TIMEBANK_DATABASE_URL": database_url
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "timebank.cli", *args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_revoked_tokens_answer_401_on_every_worker(fresh_db: str) -> None:
    admin_token = "tb_e2e_admin_" + uuid.uuid4().hex
    env = {
        "TIMEBANK_ADMIN_TOKEN": admin_token,
        "TIMEBANK_WORKERS": str(WORKERS),
        "TIMEBANK_TOKEN_CACHE_SECONDS": "3600",
        "TIMEBANK_AUTH_FAILURES_PER_MINUTE": "100000",
    }
    owner = await asyncpg.connect(fresh_db, server_settings={"search_path": "timebank"})
    try:
        async with running_server(fresh_db, **env) as server, httpx.AsyncClient(base_url=server.url) as http:
            deadline = asyncio.get_running_loop().time() + POLL_SECONDS_MAX
            while await subscribed_listeners(owner) < WORKERS:
                assert asyncio.get_running_loop().time() < deadline, "the workers' listeners did not subscribe"
                await asyncio.sleep(0.05)
            assert await subscribed_listeners(owner) == WORKERS

            admin = {"Authorization": f"Bearer {admin_token}"}
            slug = "e2e-" + uuid.uuid4().hex[:8]
            assert (
                await http.post("/v1/communities", headers=admin, json={"slug": slug, "name": "撤销"})
            ).status_code == 201
            made = await http.post(
                f"/v1/communities/{slug}/members", headers=admin, json={"display_name": "丢手机", "roles": ["resident"]}
            )
            assert made.status_code == 201, made.text
            member_id = made.json()["id"]
            tokens: dict[str, tuple[str, str]] = {}
            for name in ("api", "cli", "control"):
                issued = await http.post(f"/v1/members/{member_id}/tokens", headers=admin)
                assert issued.status_code == 201, issued.text
                token = issued.json()["token"]
                digest = hashlib.sha256(token.encode()).digest()
                token_id = str(await owner.fetchval("select id from tokens where token_hash = $1", digest))
                tokens[name] = (token, token_id)
            for token, _ in tokens.values():
                assert await statuses(server, token, WARM_REQUESTS) == [200] * WARM_REQUESTS

            # Through the API: one worker handles the revocation, and both refuse the token from then on.
            token, token_id = tokens["api"]
            revoked = await http.post(
                f"/v1/tokens/{token_id}/revoke", headers=admin | {"Idempotency-Key": uuid.uuid4().hex}
            )
            assert revoked.status_code == 200, revoked.text
            assert revoked.json()["revoked_at"] is not None
            assert await statuses(server, token, FOLLOWING_REQUESTS) == [401] * FOLLOWING_REQUESTS

            # From the command line, another process altogether.
            token, token_id = tokens["cli"]
            code, out, err = await cli(fresh_db, "token", "revoke", token_id)
            assert code == 0, err
            assert out.startswith(f"revoked token {token_id}"), out
            assert "warning" not in err, err
            assert await statuses(server, token, FOLLOWING_REQUESTS) == [401] * FOLLOWING_REQUESTS

            # The control: revoked without a notification, the caches keep serving it.
            token, token_id = tokens["control"]
            await owner.execute(
                "insert into token_revocations (token_id, revoked_by, request_id) values ($1, 'test', 'test')",
                uuid.UUID(token_id),
            )
            control: list[Any] = await statuses(server, token, FOLLOWING_REQUESTS)
            assert 200 in control, "the caches were not in use, so the revocations above proved nothing"
            log = server.log()
    finally:
        await owner.close()
    assert "token_revocation_unconfirmed" not in log


async def test_a_revoked_admin_token_stops_the_start(fresh_db: str) -> None:
    """TIMEBANK_ADMIN_TOKEN once revoked cannot be made an admin's token again: `serve` says so and exits."""
    admin_token = "tb_e2e_admin_" + uuid.uuid4().hex
    async with running_server(fresh_db, TIMEBANK_ADMIN_TOKEN=admin_token):
        pass
    owner = await asyncpg.connect(fresh_db, server_settings={"search_path": "timebank"})
    try:
        digest = hashlib.sha256(admin_token.encode()).digest()
        token_id = await owner.fetchval("select id from tokens where token_hash = $1", digest)
    finally:
        await owner.close()
    code, _, err = await cli(fresh_db, "token", "revoke", str(token_id))
    assert code == 0, err
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMEBANK_")} | {
        "TIMEBANK_DATABASE_URL": fresh_db,
        "TIMEBANK_ADMIN_TOKEN": admin_token,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "timebank.cli", "serve", "--port", "1",
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    out, err_bytes = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert "TIMEBANK_ADMIN_TOKEN was revoked" in err_bytes.decode()
    assert admin_token not in out.decode() + err_bytes.decode()
