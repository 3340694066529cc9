"""Time passing during a run, so that the service's own jobs step service requests while clients do.

The auto-confirm job completes a request reported 7 days ago, the expiry job cancels an open or
assigned request whose hold (14 days after its date) has expired: neither happens within a
minute. Now and then, as the database owner, this moves one reported request's report 8 days
back, or one open or assigned request's hold expiry a second into the past (as
tests/property/test_service_request_walks.py does), each under the request's row lock, so that it
never races a step taken at that moment. The service's job runner (every second during a run)
then does the rest, racing the clients' confirmations, claims and cancellations; the checker
proves the outcome. Each move is written into the history as a `time_passes` note.

It also watches what the jobs did (`seen`: auto_confirm, request_expiry), for a run's goal. A
database that does not answer (a crash run's killed PostgreSQL) only skips a tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable

import asyncpg

from reliability.history import JOB_KINDS, HistoryWriter

TICK_SECONDS = 0.5
# The chance, each tick, that a week passes for one reported request, or one hold expires: higher
# until the job has acted on one, so that it does early, then low, so that most flows are left to
# the clients (a short run on a busy machine has few reported requests to spare).
AGE_CHANCE = (0.25, 0.05)
EXPIRE_CHANCE = (0.25, 0.05)
CONNECT_TIMEOUT_SECONDS = 5.0

AGE_REPORT = """
    update service_requests set checked_out_at = now() - interval '8 days'
     where id = (select id from service_requests where status = 'reported'
                  order by random() limit 1 for update skip locked)
    returning id::text
"""
# Holds never change through the API (a trigger refuses it): the owner moves the moment with
# triggers off, for this session only.
EXPIRE_HOLD = """
    update holds set expires_at = now() - interval '1 second'
     where id = (select hold_id from service_requests
                  where status in ('open', 'assigned') and hold_id is not null
                  order by random() limit 1 for update skip locked)
    returning id::text
"""
JOBS_SEEN = """
    select exists (select 1 from audit_events where action = 'service_request.completed' and actor = 'system')
               as auto_confirm,
           exists (select 1 from audit_events where action = 'service_request.cancelled' and actor = 'system')
               as request_expiry
"""


async def _tick(
    conn: asyncpg.Connection, rng: random.Random, writer: HistoryWriter, now: float, seen: set[str]
) -> None:
    if rng.random() < AGE_CHANCE["auto_confirm" in seen]:
        aged = await conn.fetchval(AGE_REPORT)
        if aged is not None:
            writer.note("time_passes", now, service_request_id=aged, what="reported 8 days ago")
    if rng.random() < EXPIRE_CHANCE["request_expiry" in seen]:
        async with conn.transaction():
            await conn.execute("set local session_replication_role = replica")
            expired = await conn.fetchval(EXPIRE_HOLD)
        if expired is not None:
            writer.note("time_passes", now, hold_id=expired, what="the request's hold expired")


async def pass_time(
    database_url: str, seed: int, writer: HistoryWriter, clock: asyncio.Event, seen: set[str], now: Callable[[], float]
) -> None:
    """Until `clock` is set: every tick, maybe age a request, and note which jobs have acted."""
    rng = random.Random(f"{seed}:clock")  # noqa: S311 -- a reproducible schedule, not a secret.
    conn: asyncpg.Connection | None = None
    try:
        while not clock.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(clock.wait(), TICK_SECONDS)
            try:
                if conn is None or conn.is_closed():
                    conn = await asyncpg.connect(
                        database_url, timeout=CONNECT_TIMEOUT_SECONDS, server_settings={"search_path": "timebank"}
                    )
                await _tick(conn, rng, writer, now(), seen)
                if not seen >= JOB_KINDS:
                    row = await conn.fetchrow(JOBS_SEEN)
                    seen.update(name for name in JOB_KINDS if row is not None and row[name])
            except Exception as exc:
                # A killed database fails in many ways (asyncpg's InternalClientError when the
                # postmaster dies mid-commit, too): the tick is skipped, and noted.
                writer.note("time_passes_skipped", now(), error=repr(exc)[:300])
                if conn is not None:
                    conn.terminate()
                conn = None
    finally:
        if conn is not None:
            conn.terminate()
