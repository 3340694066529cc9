"""Bench workloads of the public log (issue 12, item 7): measured, not timed tests.

    python -m bench.public_log --transactions 1000000      # the issue's scale (long: seeding first)
    python -m bench.public_log --transactions 2000         # a smoke run, seconds

On a scratch migrated database (PostgreSQL found as the tests find theirs) holding `--transactions`
credits, written set-wise in SQL by bench/ledger_fill.py (the rows post_credits writes, valid for
`timebank verify`; a million in a minute or two). `--template NAME` keeps the seeded database as NAME
(seeding it only when it does not exist) and measures on a copy of it, so that runs before and after
a change measure the same ledger:

- **seal**: `timebank log seal`'s work (append every existing transaction, sign one checkpoint),
  in-process, transactions per second. Target at 1,000,000: under a minute.
- **proof**: `--proofs` inclusion proofs of random transactions at the full tree size, through the
  service's own code path (timebank.log.service.inclusion_proof on the service role's pool);
  p50/p99/p99.9 in ms. Target at 1,000,000 leaves: p99 under 20 ms.
- **verify**: `timebank verify --checkpoints DIR` as a subprocess (the ledger checks and the log's),
  wall seconds. Target at 1,000,000: under a minute.
- **keep up**: the coalesced credit workload (bench workload a/b) runs against a server whose sealer
  runs every second; there, `log_state.tree_size` against `count(*) from transactions` after the
  run shows whether a backlog grew (`--server-env TIMEBANK_LOG_KEY_FILE=... ` with `python -m bench`).

Prints one JSON document (and writes it to `--json` when given).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from bench.ledger_fill import fill_credits
from bench.seed import Seeder
from bench.stats import percentiles
from tests import pg
from timebank.config import load_settings
from timebank.db import Database
from timebank.embedded import with_database
from timebank.log.note import Signer
from timebank.log.sealer import seal_once
from timebank.log.service import inclusion_proof
from timebank.log.signer import CheckpointSigner
from timebank.migrate import migrate


async def _verify_seconds(url: str, directory: Path, verifier_key: str) -> tuple[float, int, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TIMEBANK_")}
    environment |= {"TIMEBANK_DATABASE_URL": url, "TIMEBANK_LOG_LEVEL": "warning"}
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "timebank.cli", "verify", "--checkpoints", str(directory), "--log-key", verifier_key,
        env=environment, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await process.communicate()
    return time.perf_counter() - started, process.returncode or 0, output.decode(errors="replace")[-2000:]


def _process_cpu(pid: int) -> float | None:
    """User + system CPU seconds of a local process (a PostgreSQL backend on this machine), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_spent(names: list[str], before: list[float | None], after: list[float | None]) -> dict[str, float | None]:
    return {
        name: None if b is None or a is None else round(a - b, 2)
        for name, b, a in zip(names, before, after, strict=True)
    }


async def _seed(url: str, transactions: int) -> float:
    seeder = await Seeder.connect(url, uuid.uuid4().hex)
    try:
        communities = await seeder.communities(10, 100)
        members = [m.id for c in communities for m in c.members]
        return await fill_credits(url, seeder.admin, members, transactions)
    finally:
        await seeder.close()


async def _database(server_url: str, transactions: int, template: str | None) -> tuple[str, str, float]:
    """(name, owner url, seconds seeding) of a seeded database to measure on, dropped afterwards."""
    settings = load_settings({})
    if template is None:
        name, url = await pg.migrated_database(server_url, settings, prefix="timebank_bench_log")
        return name, url, await _seed(url, transactions)
    conn = await asyncpg.connect(server_url)
    try:
        exists = await conn.fetchval("select true from pg_database where datname = $1", template)
    finally:
        await conn.close()
    seconds = 0.0
    if not exists:
        template_url = await pg.create_database(server_url, template)
        await migrate(settings, template_url)
        seconds = await _seed(template_url, transactions)
        await _vacuum(template_url)
    name = f"timebank_bench_log_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'create database "{name}" template "{template}" strategy file_copy')
    finally:
        await conn.close()
    url = with_database(server_url, name)
    await migrate(settings, url)  # the template may predate this version's migrations and functions
    return name, url, seconds


async def _vacuum(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("vacuum analyze")
        await conn.execute("checkpoint")
    finally:
        await conn.close()


async def run(transactions: int, proofs: int, server_url: str, template: str | None = None) -> dict[str, Any]:
    name, url, seed_seconds = await _database(server_url, transactions, template)
    work = Path(tempfile.mkdtemp(prefix="timebank-bench-log-"))
    report: dict[str, Any] = {"transactions": transactions, "seed_seconds": round(seed_seconds, 1)}
    try:
        signer = Signer.generate("timebank.bench/log")
        checkpoints = CheckpointSigner(signer, work / "checkpoints")
        db = await Database.connect(load_settings({}, statement_timeout_ms=600_000, pool_max_size=4), url)
        try:
            async with db.connection() as conn, db.connection() as reader:
                backends = [await c.fetchval("select pg_backend_pid()") for c in (conn, reader)]
                cpu_before = [_process_cpu(pid) for pid in backends] + [time.process_time()]
                load = os.getloadavg()[0]
                started = time.perf_counter()
                result = await seal_once(conn, checkpoints, reader=reader)
                seconds = time.perf_counter() - started
                cpu_after = [_process_cpu(pid) for pid in backends] + [time.process_time()]
            report["seal"] = {
                "leaves": result.tree_size,
                "seconds": round(seconds, 2),
                "leaves_per_second": round(result.tree_size / max(seconds, 1e-9)),
                "target": "1,000,000 leaves in under 60 s",
                # CPU seconds each process spent (a busy machine stretches the wall time, not these).
                "cpu_seconds": _cpu_spent(["writer_backend", "reader_backend", "sealer"], cpu_before, cpu_after),
                "load_average_at_start": load,
            }
            ids = [r["transaction_id"] for r in await db.fetch("select transaction_id from log_leaves")]
            chosen = [random.choice(ids) for _ in range(proofs)]
            latencies = []
            for transaction_id in chosen:
                started = time.perf_counter()
                await inclusion_proof(db, transaction_id, None, 1.0)
                latencies.append((time.perf_counter() - started) * 1000)
            report["proof"] = {"samples": proofs, "latency_ms": percentiles(latencies), "target": "p99 < 20 ms"}
        finally:
            await db.close()
        load = os.getloadavg()[0]
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        seconds, status, output = await _verify_seconds(url, checkpoints.directory, signer.verifier.encode())
        spent = resource.getrusage(resource.RUSAGE_CHILDREN)
        report["verify_checkpoints"] = {
            "seconds": round(seconds, 2),
            "exit": status,
            "target": "under 60 s",
            "cpu_seconds_verifier": round(spent.ru_utime + spent.ru_stime - children.ru_utime - children.ru_stime, 2),
            "load_average_at_start": load,
        }
        if status != 0:
            report["verify_checkpoints"]["output"] = output
    finally:
        await pg.drop_database(server_url, name)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.public_log", description=__doc__.split("\n\n")[0])
    parser.add_argument("--transactions", type=int, default=1_000_000, help="credits to seed (default 1,000,000)")
    parser.add_argument("--proofs", type=int, default=2000, help="inclusion proofs to time (default 2000)")
    parser.add_argument("--server-url", help="a PostgreSQL owner URL (default: as the tests find one)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--template", help="keep the seeded database under this name and measure on copies of it")
    args = parser.parse_args(argv)

    if args.server_url:
        report = asyncio.run(run(args.transactions, args.proofs, args.server_url, args.template))
    else:
        with pg.postgres_server() as server_url:
            report = asyncio.run(run(args.transactions, args.proofs, server_url, args.template))
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
