"""Workload j: credits on a new deployment, with and without the statistics of its empty ledger.

A fresh database with --fresh-communities (10) communities of --fresh-volunteers (100) volunteers
and no transactions yet, as an operator starts one. j.unanalyzed drives credits at it as it is;
j.analyzed runs `VACUUM ANALYZE` first (what autovacuum or an operator does on any new deployment),
so the planner is told postings and transactions are empty. Plans cached on that word once turned
every commit into sequential scans of the growing ledger (issue 13); the analyzed run must keep up
with the unanalyzed one. Each run gets a database and a server of its own, in the order of VARIANTS, and
reports the sequential and index scans its run made on the ledger's growing tables.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import asyncpg

from bench import postgres
from bench.procs import Sampler
from bench.seed import Seeder
from bench.stacks import Stack, running_stack
from bench.workloads import HttpLoad, Result, http_workload

# Unanalyzed, analyzed, unanalyzed again: j.analyzed is compared with the mean of the runs on either
# side of it, so that a drift of the machine over the three (the WAL and checkpoints of the runs
# before, autovacuum) falls on both sides of the comparison instead of on the second run alone.
VARIANTS = (("j.unanalyzed", False), ("j.analyzed", True), ("j.unanalyzed.after", False))
GROWING = ("postings", "transactions", "idempotency_keys", "accounts")

SCANS = """
select relname, seq_scan, coalesce(idx_scan, 0) as idx_scan, n_live_tup
  from pg_stat_user_tables where schemaname = 'timebank' and relname = any($1::text[]) order by relname
"""


async def table_scans(url: str) -> dict[str, dict[str, int]]:
    """Sequential and index scans so far, and live rows, of the tables a credit reads by key."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(SCANS, list(GROWING))
    finally:
        await conn.close()
    return {r["relname"]: {"seq_scan": r["seq_scan"], "idx_scan": r["idx_scan"], "rows": r["n_live_tup"]} for r in rows}


async def fresh_credits(
    server_url: str, run_id: str, load: HttpLoad, env: dict[str, str], communities: int, volunteers: int,
    say: Any, stack: Stack,
) -> dict[str, Result]:  # fmt: skip
    """Both variants of workload j under `stack`; `load` gives everything but the server's URL."""
    results: dict[str, Result] = {}
    for workload, analyze in VARIANTS:
        name, url = await postgres.migrated_database(server_url, "timebank_bench_h")
        try:
            seeder = await Seeder.connect(url, run_id)
            try:
                seeded = await seeder.communities(communities, volunteers)
            finally:
                await seeder.close()
            await postgres.execute(url, *(["vacuum (analyze)"] if analyze else []), "checkpoint")
            rows = [(str(m.id), c.coordinator_token) for c in seeded for m in c.members]
            state = "after VACUUM ANALYZE" if analyze else "never analyzed"
            where = f"{stack.label}, {load.duration} s"
            say(f"{workload}: credits on a new database of {len(rows):,} volunteers, {state} ({where})")
            async with running_stack(stack, "timebank", url, env) as server:
                sampler = Sampler(server.process.pid)
                sampler.start()
                try:
                    before = await table_scans(url)
                    result = await http_workload(
                        workload, "credit", rows, replace(load, base_url=server.url), sampler,
                        volunteers=len(rows), analyzed=analyze,
                    )  # fmt: skip
                    # A backend reports its counts once idle for up to a second (PostgreSQL 15's stats).
                    await asyncio.sleep(1.5)
                    after = await table_scans(url)
                finally:
                    await sampler.stop()
            result.detail["scans"] = {
                table: {
                    "seq_scan": after[table]["seq_scan"] - before[table]["seq_scan"],
                    "idx_scan": after[table]["idx_scan"] - before[table]["idx_scan"],
                    "rows": after[table]["rows"],
                }
                for table in after
            }
            results[workload] = result
            scans = ", ".join(f"{t} {s['seq_scan']} seq/{s['idx_scan']} idx" for t, s in result.detail["scans"].items())
            say(f"   {result.throughput:,.1f} req/s, p99 {(result.latency_ms or {}).get('p99')} ms, "
                f"errors {result.errors}; scans during the run: {scans}")  # fmt: skip
        finally:
            await postgres.drop_database(server_url, name)
    return results
