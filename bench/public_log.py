"""Bench workloads of the public log (issue 12, item 7): measured, not timed tests.

    python -m bench.public_log --transactions 1000000      # the issue's scale (long: seeding first)
    python -m bench.public_log --transactions 2000         # a smoke run, seconds

On a scratch migrated database (PostgreSQL found as the tests find theirs), seeded through the real
SQL operations with `--transactions` credits:

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
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.seed import Seeder
from bench.stats import percentiles
from tests import pg
from timebank.config import load_settings
from timebank.db import Database
from timebank.log.note import Signer
from timebank.log.sealer import seal_once
from timebank.log.service import inclusion_proof
from timebank.log.signer import CheckpointSigner


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


async def run(transactions: int, proofs: int, server_url: str) -> dict[str, Any]:
    settings = load_settings({})
    name, url = await pg.migrated_database(server_url, settings, prefix="timebank_bench_log")
    work = Path(tempfile.mkdtemp(prefix="timebank-bench-log-"))
    report: dict[str, Any] = {"transactions": transactions}
    try:
        seeder = await Seeder.connect(url, uuid.uuid4().hex)
        try:
            started = time.perf_counter()
            communities = await seeder.communities(10, 100)
            await seeder.credits(communities, transactions)
            report["seed_seconds"] = round(time.perf_counter() - started, 1)
        finally:
            await seeder.close()
        signer = Signer.generate("timebank.bench/log")
        checkpoints = CheckpointSigner(signer, work / "checkpoints")
        db = await Database.connect(load_settings({}, statement_timeout_ms=600_000, pool_max_size=4), url)
        try:
            async with db.connection() as conn:
                started = time.perf_counter()
                result = await seal_once(conn, checkpoints)
                seconds = time.perf_counter() - started
            report["seal"] = {
                "leaves": result.tree_size,
                "seconds": round(seconds, 2),
                "leaves_per_second": round(result.tree_size / max(seconds, 1e-9)),
                "target": "1,000,000 leaves in under 60 s",
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
        seconds, status, output = await _verify_seconds(url, checkpoints.directory, signer.verifier.encode())
        report["verify_checkpoints"] = {"seconds": round(seconds, 2), "exit": status, "target": "under 60 s"}
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
    args = parser.parse_args(argv)

    if args.server_url:
        report = asyncio.run(run(args.transactions, args.proofs, args.server_url))
    else:
        with pg.postgres_server() as server_url:
            report = asyncio.run(run(args.transactions, args.proofs, server_url))
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
