"""A quick HTTP load check of the real server with wrk: POST /v1/credits and GET /v1/accounts/{id}.

Usage: python bench/http_smoke.py [--server-url URL] [--duration 20] [--connections 32]

Creates a scratch database on the PostgreSQL at --server-url (default the local one), starts
`timebank serve` on it, seeds 10 communities x 10 volunteers through the API, runs wrk against each
endpoint, prints wrk's summary, then drops the database. Needs `wrk` (Debian package wrk).
The full benchmark suite with its pgbench baseline is issue 4's `bench/` command.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
WRK_SCRIPTS = ROOT / "bench" / "wrk"
sys.path.insert(0, str(ROOT))

from tests import pg  # noqa: E402  (the tests' database helpers, reused)
from tests.e2e.server import running_server  # noqa: E402
from timebank.config import load_settings  # noqa: E402


async def seed(url: str, token: str) -> tuple[list[str], list[str]]:
    members: list[str] = []
    accounts: list[str] = []
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        for c in range(10):
            slug = f"bench-{c}-{uuid.uuid4().hex[:6]}"
            created = await client.post("/v1/communities", json={"slug": slug, "name": slug})
            created.raise_for_status()
            for v in range(10):
                member = await client.post(
                    f"/v1/communities/{slug}/members", json={"display_name": f"v{v}", "roles": ["volunteer"]}
                )
                member.raise_for_status()
                members.append(member.json()["id"])
                accounts.append(member.json()["account_id"])
    return members, accounts


def wrk(url: str, script: str, duration: int, connections: int, env: dict[str, str]) -> str:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", script, url]
    return subprocess.run(command, env=os.environ | env, capture_output=True, text=True, check=True).stdout


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server-url", default=pg.LOCAL_URL)
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    name, database = await pg.migrated_database(args.server_url, load_settings({}), prefix="timebank_bench")
    token = "tb_bench_" + secrets.token_urlsafe(16)
    try:
        async with running_server(database, TIMEBANK_ADMIN_TOKEN=token, TIMEBANK_LOG_LEVEL="warning") as server:
            members, accounts = await seed(server.url, token)
            for label, script, env in (
                ("POST /v1/credits", WRK_SCRIPTS / "credits.lua", {"TOKEN": token, "MEMBERS": ",".join(members)}),
                (
                    "GET /v1/accounts/{id}",
                    WRK_SCRIPTS / "account.lua",
                    {"TOKEN": token, "ACCOUNTS": ",".join(accounts)},
                ),
            ):
                print(f"== {label}: {args.connections} connections, {args.duration} s")
                print(wrk(server.url, str(script), args.duration, args.connections, env))
    finally:
        await pg.drop_database(args.server_url, name)


if __name__ == "__main__":
    asyncio.run(main())
