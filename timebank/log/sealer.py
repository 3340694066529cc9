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

Streaming a backlog
-------------------
Given a second connection (`reader`), a round reads every pending row in one snapshot S through a
cursor on it and appends them batch by batch on the first, so that PostgreSQL builds the next
batch's leaves while this process hashes and the other connection stores the previous batch (a
million existing transactions: about a minute on two busy cores instead of several). The
watermark after each batch is the one above for that batch read in S: every row below
(last.xact_id, last.seq + 1) with an xact_id under xmin(S) is visible in S and came earlier in the
stream; after the last batch it is (xmin(S), 0). The tree's right edge is carried from batch to
batch in memory; log_append still checks every node against its stored children.
"""

from __future__ import annotations

import asyncio
import contextlib
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
# The planner overestimates the per-row leaf builds of log_pending and would compile them for longer than they take.
NO_JIT = "set local jit = off"
STATE = "select tree_size, pg_snapshot_xmin(pg_current_snapshot())::text as xmin from log_state"
PENDING = "select transaction_id, xact_id::text as xact_id, seq, leaf::text from log_pending($1)"


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
        await conn.execute(NO_JIT)
        state = await conn.fetchrow(STATE)
        rows = await conn.fetch(PENDING, batch)
        size = state["tree_size"]
        frontier = await tree.stored_nodes(conn, merkle.frontier(size)) if rows else {}
    if not rows:
        return 0, size
    made = merkle.append(size, _leaf_hashes(rows), frontier.__getitem__)
    xmin, last = int(state["xmin"]), rows[-1]
    if len(rows) == batch and int(last["xact_id"]) < xmin:
        watermark = (int(last["xact_id"]), last["seq"] + 1)
    else:
        watermark = (xmin, 0)
    new_size = await _store(conn, size, rows, made, watermark)
    return None if new_size is None else (len(rows), new_size)


async def _store(
    conn: Any, size: int, rows: list[Any], made: dict[tuple[int, int], bytes], watermark: tuple[int, int]
) -> int | None:
    """log_append the rows' leaves and the nodes they complete; the new size, or None when the log moved."""
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
    return new_size


def _leaf_hashes(rows: list[Any]) -> list[bytes]:
    return [merkle.leaf_hash(leaf_from_json(r["leaf"])) for r in rows]


async def _stream_round(conn: Any, reader: Any, batch: int) -> tuple[int, int] | None:
    """One round read in one snapshot on `reader`, appended batch by batch on `conn` (module docstring)."""
    async with reader.transaction(isolation="repeatable_read", readonly=True):
        await reader.execute(SEALER_TIMEOUT)  # each fetch; the first also finds every pending row
        await reader.execute(NO_JIT)
        state = await reader.fetchrow(STATE)
        size, xmin = state["tree_size"], int(state["xmin"])
        cursor = await reader.cursor(PENDING, 2**31 - 1)
        # Read ahead: PostgreSQL builds the next batch while this one is hashed and stored.
        queue: asyncio.Queue[tuple[list[Any], list[bytes]] | BaseException] = asyncio.Queue(maxsize=2)

        async def read() -> None:
            try:
                while True:
                    rows = await cursor.fetch(batch)
                    await queue.put((rows, _leaf_hashes(rows)))
                    if len(rows) < batch:
                        return
            except Exception as exc:  # handed to the appending side, which raises it
                await queue.put(exc)

        reading = asyncio.create_task(read())
        try:
            frontier = await tree.stored_nodes(conn, merkle.frontier(size))
            appended = 0
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise item
                rows, leaves = item
                if not rows:
                    break
                made = merkle.append(size, leaves, frontier.__getitem__)
                last_xact = int(rows[-1]["xact_id"])
                done = len(rows) < batch or last_xact >= xmin
                watermark = (xmin, 0) if done else (last_xact, rows[-1]["seq"] + 1)
                new_size = await _store(conn, size, rows, made, watermark)
                if new_size is None:
                    return None
                frontier = {node: made.get(node) or frontier[node] for node in merkle.frontier(new_size)}
                appended, size = appended + len(rows), new_size
                if len(rows) < batch:
                    break
            await reading
        finally:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reading
    return appended, size


async def append_pending(conn: Any, batch: int = BATCH, reader: Any = None) -> tuple[int, int]:
    """Append every transaction committed so far; (leaves appended, tree size). With a second
    connection, `reader`, a backlog is streamed (module docstring)."""
    appended = 0
    while True:
        step = await (_stream_round(conn, reader, batch) if reader is not None else _append_batch(conn, batch))
        if step is None:
            continue
        count, size = step
        appended += count
        if reader is not None or count < batch:
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


async def seal_once(conn: Any, signer: CheckpointSigner | None, batch: int = BATCH, reader: Any = None) -> SealResult:
    appended, size = await append_pending(conn, batch, reader)
    note = await sign_checkpoint(conn, signer) if signer is not None else None
    return SealResult(appended, size, note)


async def run_sealer_job(db: Any, signer: CheckpointSigner | None, interval_seconds: float) -> None:
    """Every interval, seal what committed since (the server's background job)."""
    while True:
        try:
            async with db.connection() as conn, db.connection() as reader:
                result = await seal_once(conn, signer, reader=reader)
            if result.appended:
                log.info("log_sealed", appended=result.appended, tree_size=result.tree_size)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("log_seal_failed", exc_info=True)
        await asyncio.sleep(interval_seconds)
