"""`timebank verify --checkpoints DIR`: the tree recomputed from the ledger, against every saved checkpoint.

The leaves are recomputed from the transactions as they are now (leaf format 1), in the order the
log gives them; the roots at every saved checkpoint's size are recomputed from those leaves alone
(streaming, keeping only the tree's right edge), and each saved checkpoint must be signed by the
log's key and carry exactly that root. So whoever edits a transaction, deletes one, reorders the
log or slips one into the past — even recomputing balances, digests, audit events and the stored
tree to match — is named, as long as one checkpoint signed before the edit survives outside the
database. Two checkpoints of one size with different roots (a fork) are named too.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from timebank.log import merkle
from timebank.log.leaf import leaf_from_json
from timebank.log.note import Checkpoint, NoteError, Verifier, open_checkpoint

# How long a transaction may legitimately stay uncommitted after it took its created_at (the
# service's statements time out within seconds); a leaf whose transaction claims to be older than a
# checkpoint signed before it by more than this was slipped into the past.
IN_FLIGHT_MARGIN = "10 minutes"


@dataclass(frozen=True)
class LogCheck:
    name: str
    description: str


LOG_CHECKS: tuple[LogCheck, ...] = (
    LogCheck("log_leaves_match_ledger", "every leaf is still the transaction it was when logged"),
    LogCheck("log_tree_matches_leaves", "the stored tree is the RFC 6962 tree of the recomputed leaves"),
    LogCheck("transactions_logged", "every transaction below the sealer's watermark has a leaf"),
    LogCheck("transactions_not_backdated", "no transaction claims to predate a checkpoint signed before its leaf"),
    LogCheck("checkpoints_signed", "every saved checkpoint is signed by the log's key, with its origin"),
    LogCheck("checkpoints_agree", "no two saved checkpoints of one size have different roots (no fork)"),
    LogCheck("checkpoints_match_log", "every saved checkpoint's root is the recomputed tree's at its size"),
)


@dataclass
class SavedCheckpoint:
    where: str
    checkpoint: Checkpoint


def read_checkpoints(directory: Path, verifier: Verifier) -> tuple[list[SavedCheckpoint], list[tuple[str, str]]]:
    """The checkpoints saved in `directory` that verify, and a violation for each file that does not."""
    saved: list[SavedCheckpoint] = []
    violations: list[tuple[str, str]] = []
    for path in sorted(directory.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        try:
            saved.append(SavedCheckpoint(path.name, open_checkpoint(path.read_text(encoding="utf-8"), verifier)))
        except (NoteError, UnicodeDecodeError) as exc:
            violations.append(("checkpoints_signed", f"checkpoint file {path.name}: {exc}"))
    return saved, violations


def _forks(saved: Sequence[SavedCheckpoint]) -> list[tuple[str, str]]:
    by_size: dict[int, SavedCheckpoint] = {}
    violations = []
    for item in saved:
        first = by_size.setdefault(item.checkpoint.size, item)
        if first.checkpoint.root != item.checkpoint.root:
            violations.append((
                "checkpoints_agree",
                f"fork: {first.where} and {item.where} both sign size {item.checkpoint.size} with different roots",
            ))  # fmt: skip
    return violations


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# Leaves are read in ranges of this many, each in one query, by the reading connections in turn.
RANGE = 20_000
LEAVES = """
select l.leaf_index, l.transaction_id, n.hash, v.leaf::text as leaf
  from log_leaves l
  left join log_nodes n on n.level = 0 and n.index = l.leaf_index
  left join lateral (select leaf from log_leaf_source v where v.transaction_id = l.transaction_id offset 0) v on true
 where l.leaf_index >= $1 and l.leaf_index < $2
 order by l.leaf_index
"""
# One pass over every leaf: compiling it would take longer than the per-row leaf builds it speeds.
SESSION = "set local jit = off; set local work_mem = '256MB'"


async def _leaf_ranges(conn: Any, readers: Sequence[Any], end: int) -> AsyncIterator[list[Any]]:
    """The leaves [0, end) in order, range by range. Each reader (in conn's snapshot, imported) reads
    its range while this process hashes the one before: PostgreSQL builds leaves on as many
    backends as there are readers, beside the hashing."""
    sources = list(readers) or [conn]
    lock = {id(c): asyncio.Lock() for c in sources}

    async def read(source: Any, lo: int) -> list[Any]:
        async with lock[id(source)]:
            rows: list[Any] = await source.fetch(LEAVES, lo, min(lo + RANGE, end))
            return rows

    starts = list(range(0, end, RANGE))
    ahead = 2 * len(sources) if readers else 0
    pending: dict[int, asyncio.Task[list[Any]]] = {}
    try:
        for k in range(len(starts)):
            for j in range(k, min(k + ahead + 1, len(starts))):
                if j not in pending:
                    pending[j] = asyncio.create_task(read(sources[j % len(sources)], starts[j]))
            yield await pending.pop(k)
    finally:
        for task in pending.values():
            task.cancel()
        await asyncio.gather(*pending.values(), return_exceptions=True)


async def verify_log(
    conn: Any, directory: Path, verifier: Verifier, readers: Sequence[Any] = ()
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Run every log check in one repeatable-read snapshot; (violations per check, violations).

    `readers`, further connections, read the leaves in that same snapshot (pg_export_snapshot)."""
    saved, violations = read_checkpoints(directory, verifier)
    violations += _forks(saved)
    sizes = sorted({item.checkpoint.size for item in saved})
    roots: dict[int, bytes] = {}
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        await conn.execute(SESSION)
        log_size: int = await conn.fetchval("select tree_size from log_state")
        end: int = await conn.fetchval("select coalesce(max(leaf_index) + 1, 0) from log_leaves")
        joined: list[Any] = []
        if readers:
            snapshot = await conn.fetchval("select pg_export_snapshot()")
            for reader in readers:
                await reader.execute("begin isolation level repeatable read read only")
                joined.append(reader)
                await reader.execute(f"set transaction snapshot '{snapshot}'; {SESSION}")
        try:
            roots, expected_index, stack = await _recompute(conn, joined, end, sizes, violations)
        finally:
            for reader in joined:
                with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                    await reader.execute("rollback")
        if expected_index != log_size:
            violations.append((
                "log_leaves_match_ledger", f"the log records {log_size} leaves but {expected_index} are stored",
            ))  # fmt: skip
        if expected_index and stack:
            recomputed = merkle.fold([h for _, h in stack])
            stored_nodes = await conn.fetch(
                "select level, index, hash from log_nodes n join unnest($1::smallint[], $2::bigint[]) w(l, i)"
                " on n.level = w.l and n.index = w.i",
                [lv for lv, _ in merkle.root_nodes(expected_index)],
                [ix for _, ix in merkle.root_nodes(expected_index)],
            )
            stored = {(r["level"], r["index"]): bytes(r["hash"]) for r in stored_nodes}
            if (
                len(stored) != len(merkle.root_nodes(expected_index))
                or merkle.root_from(expected_index, stored) != recomputed
            ):
                violations.append((
                    "log_tree_matches_leaves",
                    f"the stored tree's root at size {expected_index} is not the recomputed leaves' root",
                ))  # fmt: skip
        violations += await _unlogged_and_backdated(conn)
    violations += _compare(saved, roots, expected_index)
    counts = {check.name: 0 for check in LOG_CHECKS}
    for name, _ in violations:
        counts[name] += 1
    return counts, violations


async def _recompute(
    conn: Any, readers: Sequence[Any], end: int, sizes: Sequence[int], violations: list[tuple[str, str]]
) -> tuple[dict[int, bytes], int, list[tuple[int, bytes]]]:
    """Every leaf recomputed from the ledger, against its stored hash, and the root at each size
    wanted (streaming: only the tree's right edge is kept); (roots, leaves read, right edge)."""
    roots: dict[int, bytes] = {}
    stack: list[tuple[int, bytes]] = []  # the right edge: (level, hash) of complete subtrees
    wanted = iter(sizes)
    next_size = next(wanted, None)
    while next_size == 0:
        next_size = next(wanted, None)
    expected_index = 0
    async for rows in _leaf_ranges(conn, readers, end):
        for row in rows:
            index = row["leaf_index"]
            if index != expected_index:
                violations.append(("log_leaves_match_ledger", f"leaves {expected_index}..{index - 1} are missing"))
            expected_index = index + 1
            if row["leaf"] is None:
                violations.append((
                    "log_leaves_match_ledger", f"leaf {index}: transaction {row['transaction_id']} does not exist",
                ))  # fmt: skip
                leaf_hash = bytes(row["hash"]) if row["hash"] is not None else b"\x00" * 32
            else:
                leaf_hash = merkle.leaf_hash(leaf_from_json(row["leaf"]))
                if row["hash"] is not None and bytes(row["hash"]) != leaf_hash:
                    violations.append((
                        "log_leaves_match_ledger",
                        f"leaf {index}: transaction {row['transaction_id']} is not what was logged",
                    ))  # fmt: skip
            # Push the leaf; merge equal levels (RFC 6962 over a growing prefix).
            level, h = 0, leaf_hash
            while stack and stack[-1][0] == level:
                h = merkle.node_hash(stack.pop()[1], h)
                level += 1
            stack.append((level, h))
            while next_size is not None and next_size == index + 1:
                roots[next_size] = merkle.fold([h for _, h in stack])
                next_size = next(wanted, None)
    return roots, expected_index, stack


async def _unlogged_and_backdated(conn: Any) -> list[tuple[str, str]]:
    """Transactions the sealer passed but did not log, and leaves whose transaction claims an earlier time."""
    violations = []
    for row in await conn.fetch(
        "select t.id from transactions t, log_state s"
        " where (t.xact_id, t.seq) < (s.watermark_xact, s.watermark_seq)"
        "   and not exists (select 1 from log_leaves l where l.transaction_id = t.id) order by t.seq"
    ):
        violations.append(("transactions_logged", f"transaction {row['id']} committed long ago but has no leaf"))
    # Set-wise first: a leaf is backdated when the latest signing time of the checkpoints up to its
    # index is after its transaction's time (plus the margin); each checkpoint's range of leaves is
    # one index range scan. Then, for those few, the first such checkpoint, to name it.
    backdated = await conn.fetch(
        f"""
        with bounds as (
            select tree_size as lo, lead(tree_size) over (order by tree_size) as hi,
                   max(signed_at) over (order by tree_size) as latest
              from log_checkpoints
        )
        select l.leaf_index
          from bounds b
          join log_leaves l on l.leaf_index >= b.lo and (b.hi is null or l.leaf_index < b.hi)
          join transactions t on t.id = l.transaction_id
         where b.latest > t.created_at + interval '{IN_FLIGHT_MARGIN}'
        """
    )
    for row in await conn.fetch(
        f"""
        select l.leaf_index, t.id, t.created_at, c.tree_size, c.signed_at
          from log_leaves l join transactions t on t.id = l.transaction_id
          join lateral (select tree_size, signed_at from log_checkpoints
                         where tree_size <= l.leaf_index
                           and signed_at > t.created_at + interval '{IN_FLIGHT_MARGIN}'
                         order by tree_size limit 1) c on true
         where l.leaf_index = any($1::bigint[])
         order by l.leaf_index
        """,
        [r["leaf_index"] for r in backdated],
    ):
        violations.append((
            "transactions_not_backdated",
            f"leaf {row['leaf_index']}: transaction {row['id']} claims {row['created_at']:%Y-%m-%dT%H:%M:%SZ},"
            f" before the checkpoint of {row['tree_size']} leaves signed {row['signed_at']:%Y-%m-%dT%H:%M:%SZ}"
            " that does not include it",
        ))  # fmt: skip
    return violations


def _compare(saved: Sequence[SavedCheckpoint], roots: dict[int, bytes], leaves: int) -> list[tuple[str, str]]:
    """Each saved checkpoint against the root recomputed at its size."""
    violations = []
    for item in saved:
        size, root = item.checkpoint.size, item.checkpoint.root
        if size > leaves:
            violations.append((
                "checkpoints_match_log",
                f"{item.where}: signs {size} leaves but the log has {leaves}: leaves were removed",
            ))  # fmt: skip
        elif roots.get(size) != root:
            violations.append((
                "checkpoints_match_log",
                f"{item.where}: size {size} root {_b64(root)}, the ledger's {_b64(roots.get(size, b''))}:"
                f" history in leaves {_first_divergence(saved, roots, size)}..{size - 1} was rewritten",
            ))  # fmt: skip
    return violations


def _first_divergence(saved: Sequence[SavedCheckpoint], roots: dict[int, bytes], size: int) -> int:
    """The largest saved checkpoint size below `size` that still matches (0 if none): the edit is after it."""
    matching = [
        item.checkpoint.size
        for item in saved
        if item.checkpoint.size < size and roots.get(item.checkpoint.size) == item.checkpoint.root
    ]
    return max(matching, default=0)
