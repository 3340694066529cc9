"""Reads of the stored tree: roots and proofs from the complete subtrees kept in log_nodes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from timebank.log import merkle
from timebank.log.merkle import Node


async def stored_nodes(conn: Any, nodes: Iterable[Node]) -> dict[Node, bytes]:
    """The stored hashes of these complete subtrees, in one read; KeyError names a missing one."""
    wanted = sorted(set(nodes))
    if not wanted:
        return {}
    rows = await conn.fetch(
        "select n.level, n.index, n.hash from log_nodes n"
        " join unnest($1::smallint[], $2::bigint[]) as w(level, index) on w.level = n.level and w.index = n.index",
        [level for level, _ in wanted],
        [index for _, index in wanted],
    )
    found = {(r["level"], r["index"]): bytes(r["hash"]) for r in rows}
    missing = [node for node in wanted if node not in found]
    if missing:
        raise KeyError(f"the log lacks the stored subtree (level, index) {missing[0]}")
    return found


async def root_at(conn: Any, size: int) -> bytes:
    return merkle.root_from(size, await stored_nodes(conn, merkle.root_nodes(size)))


async def inclusion_path(conn: Any, index: int, size: int) -> tuple[bytes, list[bytes]]:
    """The leaf hash at `index` and its RFC 6962 inclusion path in the tree of `size` leaves."""
    ranges = merkle.inclusion_ranges(index, size)
    return inclusion_from(await stored_nodes(conn, merkle.nodes_for(ranges) | {(0, index)}), index, size)


def inclusion_from(stored: Mapping[Node, bytes], index: int, size: int) -> tuple[bytes, list[bytes]]:
    """inclusion_path from stored hashes already read (any superset of the ones it needs);
    KeyError names a missing one."""
    try:
        return stored[(0, index)], [
            merkle.range_hash(lo, hi, stored) for lo, hi in merkle.inclusion_ranges(index, size)
        ]
    except KeyError as exc:
        raise KeyError(f"the log lacks the stored subtree (level, index) {exc.args[0]}") from None


async def consistency_path(conn: Any, first: int, second: int) -> list[bytes]:
    ranges = merkle.consistency_ranges(first, second)
    stored = await stored_nodes(conn, merkle.nodes_for(ranges))
    return [merkle.range_hash(lo, hi, stored) for lo, hi in ranges]
