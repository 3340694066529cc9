"""The sealer: appends every committed transaction to the log, then signs a checkpoint.

Which transactions, in which order, and why none is ever missed
----------------------------------------------------------------
A transaction's row becomes visible when the database transaction that wrote it commits, and
commits do not happen in the order of `seq` (an identity value taken at insert time): a row with a
smaller seq can commit after a larger one was already logged. A watermark "logged everything up to
seq N" would skip it for ever.

So each row records the id of the database transaction that wrote it (`transactions.xact_id`,
pg_current_xact_id(), 64 bits, never wrapping), and the sealer reads in one repeatable-read snapshot
S both the candidates and pg_snapshot_xmin(S), the oldest database transaction still running when S
was taken. A row not visible in S was written by a transaction running at S or begun after it,
whose id is therefore ≥ xmin(S). Hence every row with xact_id < xmin(S) is visible in S: nothing can
still commit below xmin(S). The watermark (xact_id, seq) below which every row is logged moves to
(xmin(S), 0) after a round that logged every visible candidate (or, when a round stops at its batch
limit at a row L with L.xact_id < xmin(S), to just after L). Rows at or above the watermark are
taken only when visible and not yet logged (log_pending), so a transaction held open across any
number of rounds is logged by the first round after it commits — at the end of the log, which is
where it belongs: it committed after everything logged before it.

Order: a round logs what committed since the previous round's snapshot, so if T committed before a
round's snapshot and U after it, T precedes U in the log. Within one round the order is (xact_id,
seq): if T committed before U began, T's xact_id is smaller, so T still comes first. Leaves are
therefore in an order consistent with commit order; transactions that overlapped in time (neither
finished before the other began) may appear in either order, which no client can tell apart.

Long-running writers do not hold the log back (a visible row is logged whatever runs beside it);
they only keep the watermark, and so the number of logged rows re-checked each round, from moving.
Two sealers (server processes, `timebank log seal`) may run at once: log_append refuses an append
that does not start where the tree ends (log_moved), and the loser reads again.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog

from timebank.log import merkle, tree
from timebank.log.leaf import leaf_from_json
from timebank.log.signer import CheckpointSigner

log = structlog.get_logger(__name__)

BATCH = 5000
SEALER_TIMEOUT = "set local statement_timeout = '120s'"


@dataclass
class SealResult:
    appended: int = 0
    tree_size: int = 0
    checkpoint: str | None = None


async def _append_batch(conn: Any, batch: int) -> tuple[int, int] | None:
    """Append the next batch; (appended, tree size), or None when another sealer moved the log."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        # A backlog (a large ledger when the log is first switched on) may take longer than a request may.
        await conn.execute(SEALER_TIMEOUT)
        state = await conn.fetchrow(
            "select tree_size, watermark_xact::text::numeric as wx, watermark_seq as ws,"
            " pg_snapshot_xmin(pg_current_snapshot())::text::numeric as xmin from log_state"
        )
        rows = await conn.fetch(
            "select transaction_id, xact_id::text::numeric as xact_id, seq, leaf::text from log_pending($1)", batch
        )
        size = state["tree_size"]
        frontier = await tree.stored_nodes(conn, merkle.frontier(size)) if rows else {}
    if not rows:
        return 0, size
    leaves = [merkle.leaf_hash(leaf_from_json(r["leaf"])) for r in rows]
    made = merkle.append(size, leaves, frontier.__getitem__)
    xmin, last = int(state["xmin"]), rows[-1]
    if len(rows) == batch and int(last["xact_id"]) < xmin:
        watermark = (int(last["xact_id"]), last["seq"] + 1)
    else:
        watermark = (xmin, 0)
    nodes = sorted(made.items())
    try:
        async with conn.transaction():
            await conn.execute(SEALER_TIMEOUT)
            new_size: int = await conn.fetchval(
                "select log_append($1, $2, $3, $4, $5, $6::text::xid8, $7)",
                size,
                [r["transaction_id"] for r in rows],
                [level for (level, _), _ in nodes],
                [index for (_, index), _ in nodes],
                [h for _, h in nodes],
                str(watermark[0]),
                watermark[1],
            )
    except asyncpg.PostgresError as exc:
        if getattr(exc, "detail", None) == "log_moved" or isinstance(exc, asyncpg.UniqueViolationError):
            return None
        raise
    return len(rows), new_size


async def append_pending(conn: Any, batch: int = BATCH) -> tuple[int, int]:
    """Append every transaction committed so far; (leaves appended, tree size)."""
    appended = 0
    while True:
        step = await _append_batch(conn, batch)
        if step is None:
            continue
        count, size = step
        appended += count
        if count < batch:
            return appended, size


async def sign_checkpoint(conn: Any, signer: CheckpointSigner) -> str | None:
    """Sign a checkpoint of the whole tree unless one of its size exists; the note, or None."""
    size: int = await conn.fetchval("select tree_size from log_state")
    latest = await conn.fetchval("select max(tree_size) from log_checkpoints")
    if size in (0, latest):
        return None
    async with signer.locked():
        last = signer.last_signed()
        root = await tree.root_at(conn, size)
        proof = None
        if last is not None and 0 < last.size <= size:
            proof = await tree.consistency_path(conn, last.size, size)
        note = signer.sign(size, root, proof, last)
        await conn.execute("select log_record_checkpoint($1, $2, $3)", size, root, note)
    return note


async def seal_once(conn: Any, signer: CheckpointSigner | None, batch: int = BATCH) -> SealResult:
    appended, size = await append_pending(conn, batch)
    note = await sign_checkpoint(conn, signer) if signer is not None else None
    return SealResult(appended, size, note)


async def run_sealer_job(db: Any, signer: CheckpointSigner | None, interval_seconds: float) -> None:
    """Every interval, seal what committed since (the server's background job)."""
    while True:
        try:
            async with db.connection() as conn:
                result = await seal_once(conn, signer)
            if result.appended:
                log.info("log_sealed", appended=result.appended, tree_size=result.tree_size)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("log_seal_failed", exc_info=True)
        await asyncio.sleep(interval_seconds)
