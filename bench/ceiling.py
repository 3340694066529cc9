"""The ceiling: the least a Litestar + asyncpg service can do per write, measured beside timebank.

One endpoint, `POST /hits` with `{"minutes": 15}`, decodes the body with msgspec, runs one INSERT
into a table of its own in a scratch database and answers 201 with a msgspec struct; `/ready`
answers when the pool does. The pool has timebank's size (TIMEBANK_POOL_MIN_SIZE and
TIMEBANK_POOL_MAX_SIZE, read as the service reads them). It runs under the same servers and worker
counts as timebank (bench/stacks.py), so each workload's `x ceiling` says how much of what this
stack can do on this machine timebank gets: the rest is timebank's own work (authentication,
idempotency, the ledger's SQL).

    python -m bench.ceiling --port 8001 --workers 2     # under uvicorn, as `timebank serve` runs
    granian --interface asgi --factory bench.ceiling:app   # under granian

Both read the scratch database's URL from BENCH_CEILING_DATABASE_URL.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import AsyncIterator, Sequence

import asyncpg
import msgspec
from litestar import Litestar, get, post

from timebank.config import load_settings
from timebank.server import serve

DATABASE_URL_VARIABLE = "BENCH_CEILING_DATABASE_URL"
# Each worker's connections carry this prefix and the worker's pid: bench/stacks.py counts the
# distinct names to know that every worker has its pool.
APPLICATION_NAME_PREFIX = "bench-ceiling-"

SCHEMA = """
create table ceiling_hits (
    id bigint generated always as identity primary key,
    minutes integer not null constraint ceiling_hits_minutes_positive check (minutes > 0),
    created_at timestamptz not null default now()
)
"""
INSERT = "insert into ceiling_hits (minutes) values ($1) returning id"


class Hit(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    minutes: int


class Recorded(msgspec.Struct, frozen=True):
    id: int
    minutes: int


class Ready(msgspec.Struct, frozen=True):
    status: str


@post("/hits")
async def record(data: Hit, pool: asyncpg.Pool) -> Recorded:
    """One INSERT, one round trip: what a write costs before any business rule."""
    hit_id: int = await pool.fetchval(INSERT, data.minutes)
    return Recorded(id=hit_id, minutes=data.minutes)


@get("/ready")
async def ready(pool: asyncpg.Pool) -> Ready:
    await pool.fetchval("select 1")
    return Ready(status="ready")


def app() -> Litestar:
    """The ceiling app for BENCH_CEILING_DATABASE_URL, its pool sized as timebank's."""
    dsn = os.environ[DATABASE_URL_VARIABLE]
    settings = load_settings()
    holder: dict[str, asyncpg.Pool] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min(settings.pool_min_size, settings.pool_max_size),
            max_size=settings.pool_max_size,
            server_settings={"application_name": f"{APPLICATION_NAME_PREFIX}{os.getpid()}"},
        )
        holder["pool"] = pool
        try:
            yield
        finally:
            await pool.close()

    async def provide_pool() -> asyncpg.Pool:
        return holder["pool"]

    return Litestar(route_handlers=[record, ready], dependencies={"pool": provide_pool}, lifespan=[lifespan])


async def create_table(url: str) -> None:
    """The ceiling's table, in the scratch database `url` names."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(SCHEMA)
    finally:
        await conn.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the ceiling as `timebank serve` serves timebank: timebank/server.py's uvicorn, N forked workers."""
    parser = argparse.ArgumentParser(prog="python -m bench.ceiling", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    serve(lambda _worker: app(), args.host, args.port, grace_seconds=0, workers=args.workers)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
