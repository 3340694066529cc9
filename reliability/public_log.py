"""The public log under the reliability harness: the service seals while it is killed and restarted.

After the run (and one final `timebank log seal`), every acknowledged transaction must be in the
log exactly once, in an order consistent with commit order (a transaction acknowledged before
another was sent precedes it), every checkpoint the signer wrote must verify, each consistent with
the next, and `timebank verify --checkpoints` must agree.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import asyncpg

from reliability.checker import acknowledgements
from reliability.history import OK, Op
from reliability.violation import Violation
from timebank.log import merkle, tree
from timebank.log.note import NoteError, Signer, Verifier, open_checkpoint


def log_files(log_path: Path) -> tuple[Path, Path]:
    """The run's signing key and checkpoint directory, next to its service log (made once)."""
    key = log_path.with_suffix(".log.key")
    if not key.exists():
        key.write_text(Signer.generate("timebank.reliability/log").encode() + "\n")
        key.chmod(0o600)
    return key, log_path.with_suffix(".checkpoints")


def log_environment(log_path: Path) -> dict[str, str]:
    key, checkpoints = log_files(log_path)
    return {
        "TIMEBANK_LOG_KEY_FILE": str(key),
        "TIMEBANK_CHECKPOINT_DIR": str(checkpoints),
        "TIMEBANK_LOG_SEAL_INTERVAL_SECONDS": "1",
    }


async def _cli(database_url: str, log_path: Path, *args: str) -> tuple[int, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TIMEBANK_")}
    environment |= {"TIMEBANK_DATABASE_URL": database_url, "TIMEBANK_LOG_LEVEL": "warning"}
    environment |= log_environment(log_path)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "timebank.cli", *args,
        env=environment, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        output, _ = await asyncio.wait_for(process.communicate(), 300)
    except TimeoutError:
        process.kill()
        await process.wait()
        return -1, f"timebank {' '.join(args)} did not finish in 300 s"
    return process.returncode or 0, output.decode(errors="replace")


def check_order(ops: Sequence[Op], leaf_of: dict[str, int]) -> list[Violation]:
    """Acknowledged before another was sent ⇒ logged before it (one pass over the leaves, newest first)."""
    acks, _ = acknowledgements(ops)
    timed = []
    for transaction_id, op in acks.transactions.items():
        index = leaf_of.get(transaction_id)
        if index is None:
            continue
        acked = op.first.finished if op.first.outcome == OK else None
        timed.append((index, op.first.started, acked, transaction_id, op))
    timed.sort(key=lambda item: item[0])
    violations = []
    earliest_ack_after: tuple[float, str] | None = None  # among leaves later in the log
    for index, sent, acked, transaction_id, op in reversed(timed):
        if earliest_ack_after is not None and earliest_ack_after[0] < sent:
            violations.append(Violation(
                "log_order",
                f"transaction {transaction_id} (leaf {index}) was sent after {earliest_ack_after[1]} was acknowledged,"
                " yet precedes it in the log",
                op.op_id,
            ))  # fmt: skip
        if acked is not None and (earliest_ack_after is None or acked < earliest_ack_after[0]):
            earliest_ack_after = (acked, transaction_id)
    return violations


async def check_log(database_url: str, log_path: Path, ops: Sequence[Op]) -> list[Violation]:
    violations = []
    status, output = await _cli(database_url, log_path, "log", "seal")
    if status != 0:
        return [Violation("log_seal", f"`timebank log seal` exited {status}:\n{output}")]
    key, checkpoints = log_files(log_path)
    verifier = Signer.parse(key.read_text()).verifier
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "timebank"})
    try:
        rows = await conn.fetch("select transaction_id::text, leaf_index from log_leaves")
        leaf_of = {r["transaction_id"]: r["leaf_index"] for r in rows}
        acks, _ = acknowledgements(ops)
        for transaction_id, op in acks.transactions.items():
            if transaction_id not in leaf_of:
                violations.append(Violation("log_missing", f"transaction {transaction_id} is not in the log", op.op_id))
        violations += check_order(ops, leaf_of)
        violations += await _check_checkpoints(conn, checkpoints, verifier)
    finally:
        await conn.close()
    status, output = await _cli(
        database_url, log_path, "verify", "--checkpoints", str(checkpoints), "--log-key", verifier.encode()
    )
    if status != 0:
        violations.append(
            Violation("verify_checkpoints", f"`timebank verify --checkpoints` exited {status}:\n{output}")
        )
    return violations


async def _check_checkpoints(conn: asyncpg.Connection, directory: Path, verifier: Verifier) -> list[Violation]:
    """Every checkpoint written verifies, and each is consistent with the next (proofs from the database)."""
    violations = []
    opened = []
    for name, text in _read_checkpoints(directory):
        try:
            opened.append(open_checkpoint(text, verifier))
        except NoteError as exc:
            violations.append(Violation("log_checkpoint", f"{name}: {exc}"))
    opened.sort(key=lambda c: c.size)
    if not opened:
        violations.append(Violation("log_checkpoint", "no checkpoint was written during the run"))
    for older, newer in itertools.pairwise(opened):
        try:
            proof = await tree.consistency_path(conn, older.size, newer.size)
            merkle.verify_consistency(older.size, newer.size, proof, older.root, newer.root)
        except (merkle.ProofError, KeyError) as exc:
            violations.append(Violation("log_consistency", f"checkpoint {older.size} → {newer.size}: {exc}"))
    return violations


def _read_checkpoints(directory: Path) -> list[tuple[str, str]]:
    return [(path.name, path.read_text()) for path in sorted(directory.glob("checkpoint-*"))]
