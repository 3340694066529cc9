"""Workload k's data: a ledger sealed into the public log, and the proofs to ask for.

Issue 13 wants the public log's proofs measured beside the other workloads, so that a slowdown of
`log_inclusion` or of the proof routes is seen the day it lands (issue 12's target: p99 under 20 ms
at 1,000,000 leaves). `python -m bench.public_log` times the same proof in-process, without HTTP.

Seeding (bench/__main__.py, seed_log) tops the ledger up to `--proof-transactions` with credits
written set-wise (bench/ledger_fill.py: a million in minutes, not the ten of post_credits); `seal`
then seals it as an operator does: `timebank log keygen` writes a signing key into a temporary
directory and `timebank log seal` (TIMEBANK_LOG_KEY_FILE, TIMEBANK_CHECKPOINT_DIR) appends every
transaction and signs a checkpoint, with the key and directory `--server-env` gives, if any. The
servers get no key of the bench's: a proof reads the signed checkpoint from the database, and
signing every second would change what the other workloads measure; without a key their sealer
still appends what they write, unsigned, as before.

The caller is an auditor of every community (the civil affairs bureau, who may read any
transaction); the transactions are drawn at random over the whole tree, whatever their community.
Consistency proofs are public: asked without a token, from a random older size to the signed one.
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.procs import run_measured
from bench.seed import Seeder
from bench.workloads import cli_environment
from timebank.auth.bootstrap import create_principal
from timebank.auth.tokens import new_token

PROOF_ROWS = 10_000  # transactions whose proofs are asked for, each in turn (as d's accounts)
CONSISTENCY_ROWS = 1_000  # older sizes to prove the signed checkpoint consistent with
KEY_NAME = "timebank.bench/log"
KEY_FILE = "TIMEBANK_LOG_KEY_FILE"
CHECKPOINT_DIR = "TIMEBANK_CHECKPOINT_DIR"


@dataclass(frozen=True)
class SealedLog:
    tree_size: int  # the signed checkpoint's size
    token: str  # an auditor of every community
    transactions: list[uuid.UUID]  # random leaves' transactions
    firsts: list[int]  # random older sizes
    seal_seconds: float

    def inclusion_rows(self) -> list[tuple[str, str]]:
        return [(f"/v1/transactions/{t}/proof", self.token) for t in self.transactions]

    def consistency_rows(self) -> list[tuple[str, str]]:
        """Public reads: "-" asks without a token (bench/wrk/workload.lua)."""
        return [(f"/v1/log/consistency?first={f}&second={self.tree_size}", "-") for f in self.firsts]


async def _cli(arguments: Sequence[str], owner_url: str, settings: Mapping[str, str]) -> str:
    """Run `timebank ARGUMENTS` as an operator would (same settings as the servers); its output, or RuntimeError."""
    env = cli_environment(owner_url, settings)
    done = await asyncio.to_thread(run_measured, [sys.executable, "-m", "timebank.cli", *arguments], env)
    if done.returncode != 0:
        raise RuntimeError(f"timebank {' '.join(arguments)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


async def seal(owner_url: str, settings: Mapping[str, str]) -> float:
    """`timebank log seal` with the key of `settings`, or with one made for it; returns the seconds it took."""
    with tempfile.TemporaryDirectory(prefix="timebank-bench-log-") as directory:
        if KEY_FILE not in settings:
            key = Path(directory) / "log.key"
            await _cli(["log", "keygen", "--name", KEY_NAME, "--out", str(key)], owner_url, settings)
            settings = {**settings, KEY_FILE: str(key), CHECKPOINT_DIR: str(Path(directory) / "checkpoints")}
        started = time.perf_counter()
        await _cli(["log", "seal"], owner_url, settings)
        return time.perf_counter() - started


async def sample(owner_url: str, seeder: Seeder, seal_seconds: float) -> SealedLog:
    """Random transactions of the signed tree, random older sizes, and an auditor of every community."""
    async with seeder.pool.acquire() as conn:
        size: int = await conn.fetchval("select coalesce(max(tree_size), 0) from log_checkpoints")
        if size < 2:
            raise RuntimeError(f"the signed log has {size} leaves: too few to prove")
        indexes = random.sample(range(size), min(PROOF_ROWS, size))
        rows = await conn.fetch("select transaction_id from log_leaves where leaf_index = any($1::bigint[])", indexes)
    token, _ = new_token()
    await create_principal(owner_url, "auditor", None, token)
    firsts = [random.randrange(1, size) for _ in range(CONSISTENCY_ROWS)]
    return SealedLog(size, token, [r["transaction_id"] for r in rows], firsts, seal_seconds)
