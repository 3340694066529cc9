"""What one credit costs PostgreSQL, and what a schema change does to it: CPU and WAL, not wall time.

    python -m bench.write_cost                                  # the schema as migrated
    python -m bench.write_cost --variant sql/experiments/x.sql  # ... and beside it, with x.sql applied

The write path's targets (issue 13, item 3) are about PostgreSQL's work per credit inside a batch.
Throughput on a shared 2-core machine moves with whatever else runs; the CPU time of the one backend
doing the work (from /proc, so the server must be on this machine) and the WAL it writes
(counted by EXPLAIN (ANALYZE, WAL) for that backend alone) move far less. So this measures those, for the batch
operation the service uses (post_credits, as the coalescer calls it), on a ledger that already holds
`--ledger` transactions (written set-wise by bench/ledger_fill.py, then VACUUM ANALYZE).

With `--variant FILE`, a second database gets the same schema plus FILE (run as the owner after the
migrations: an index dropped, a default changed, a function replaced) and the same seed, and the two
are measured in alternating rounds (A B A B ...), each round starting after a CHECKPOINT, so that
full-page images are counted alike and a drift of the machine falls on both. The ratio B / A is the
variant's effect. Commits wait for the disk (`synchronous_commit` on), as the service's do.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import statistics
import time
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg

from bench import postgres as pg
from bench.ledger_fill import fill_credits
from bench.procs import cpu_seconds
from bench.seed import Seeder
from timebank.config import load_settings
from timebank.db import connect_kwargs
from timebank.ledger.batch import BATCHED

UNIT = 15


@dataclass
class Target:
    label: str
    name: str
    url: str
    coordinators: list[tuple[uuid.UUID, list[uuid.UUID]]]  # per community: its coordinator, its volunteers


async def prepare(
    server_url: str, label: str, variant_sql: str | None, ledger: int, communities: int, volunteers: int
) -> Target:
    name, url = await pg.migrated_database(server_url, f"timebank_bench_wc_{label.lower()}")
    if variant_sql is not None:
        await pg.execute(url, "set search_path = timebank", variant_sql)
    seeder = await Seeder.connect(url, uuid.uuid4().hex)
    try:
        made = await seeder.communities(communities, volunteers)
        members = [m.id for c in made for m in c.members]
        if ledger:
            await fill_credits(url, seeder.admin, members, ledger)
    finally:
        await seeder.close()
    await pg.settle(url)
    return Target(label, name, url, [(c.coordinator, [m.id for m in c.members]) for c in made])


async def round_of(target: Target, credits: int, batch: int, seed: int) -> dict[str, float]:
    """`credits` credits in batches of `batch`, each batch one community's coordinator crediting random volunteers."""
    await pg.execute(target.url, "checkpoint")
    kwargs = connect_kwargs(load_settings({}), target.url)
    conn = await asyncpg.connect(**kwargs)
    rng = random.Random(seed)
    try:
        pid = await conn.fetchval("select pg_backend_pid()")
        # EXPLAIN ANALYZE counts the WAL this backend wrote for the statement (the function and all it
        # ran), where the server's WAL position would count every other session's too.
        query = "explain (analyze, wal, timing off, summary off, format json) " + BATCHED["post_credit"].query()
        wal = fpi = 0
        cpu_before = cpu_seconds(pid)
        started = time.perf_counter()
        done = 0
        while done < credits:
            size = min(batch, credits - done)
            coordinator, members = rng.choice(target.coordinators)
            chosen = rng.sample(members, size) if size <= len(members) else rng.choices(members, k=size)
            keys = [uuid.uuid4().hex for _ in range(size)]
            plan = await conn.fetchval(
                query,
                [coordinator] * size, ["bench-write-cost"] * size, keys,
                [hashlib.sha256(k.encode()).digest() for k in keys], chosen, [UNIT] * size,
                [date(2026, 11, 1)] * size, ["bench write cost"] * size,
            )  # fmt: skip
            top = json.loads(plan)[0]["Plan"]
            if top["Actual Rows"] != size:
                raise RuntimeError(f"{target.label}: {top['Actual Rows']} of {size} credits answered")
            wal += top["WAL Bytes"]
            fpi += top["WAL FPI"]
            done += size
        wall = time.perf_counter() - started
        cpu_after = cpu_seconds(pid)
    finally:
        await conn.close()
    if cpu_after <= 0:  # a backend that posted credits has spent CPU: /proc did not show it
        raise SystemExit("the backend's CPU time is unreadable: run this on the PostgreSQL server's machine")
    return {
        "cpu_us_per_credit": (cpu_after - cpu_before) * 1e6 / credits,
        "wal_bytes_per_credit": wal / credits,
        "full_page_images_per_credit": fpi / credits,
        "wall_us_per_credit": wall * 1e6 / credits,
    }


def summary(rounds: list[dict[str, float]]) -> dict[str, float]:
    return {key: round(statistics.median(r[key] for r in rounds), 1) for key in rounds[0]}


async def run(args: argparse.Namespace, server_url: str) -> dict[str, Any]:
    targets = [await prepare(server_url, "A", None, args.ledger, args.communities, args.volunteers)]
    if args.variant is not None:
        variant_sql = await asyncio.to_thread(args.variant.read_text)
        targets.append(await prepare(server_url, "B", variant_sql, args.ledger, args.communities, args.volunteers))
    measured: dict[str, list[dict[str, float]]] = {t.label: [] for t in targets}
    try:
        for index in range(args.rounds):
            for target in targets:
                result = await round_of(target, args.credits, args.batch, seed=index)
                measured[target.label].append(result)
                print(f"round {index + 1} {target.label}: " + ", ".join(f"{k} {v:,.1f}" for k, v in result.items()))
    finally:
        if not args.keep:
            for target in targets:
                await pg.drop_database(server_url, target.name)
    report: dict[str, Any] = {
        "ledger": args.ledger,
        "credits_per_round": args.credits,
        "batch": args.batch,
        "variant": str(args.variant) if args.variant else None,
        "A": summary(measured["A"]),
    }
    if args.variant is not None:
        report["B"] = summary(measured["B"])
        report["B_over_A"] = {k: round(report["B"][k] / report["A"][k], 3) for k in report["A"]}
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.write_cost", description=__doc__.split("\n")[0])
    parser.add_argument("--variant", type=Path, help="SQL run as the owner on database B after the migrations")
    parser.add_argument("--ledger", type=int, default=300_000, help="transactions already in the ledger (300,000)")
    parser.add_argument("--credits", type=int, default=6_400, help="credits measured per round (6,400)")
    parser.add_argument("--batch", type=int, default=32, help="credits per post_credits call (32)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per database, alternating (3)")
    parser.add_argument("--communities", type=int, default=100)
    parser.add_argument("--volunteers", type=int, default=100)
    parser.add_argument(
        "--server-url", help="superuser URL of the PostgreSQL to use (default: as the tests find theirs)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    with pg.postgres_server(args.server_url) as server_url:  # finds (or starts) PostgreSQL outside the loop
        report = asyncio.run(run(args, server_url))
    text = json.dumps(report, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
