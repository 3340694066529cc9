"""Reads of the public log for the API: the latest checkpoint, inclusion and consistency proofs."""

from __future__ import annotations

import base64
import math
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from timebank.db import Database
from timebank.errors import DomainError, NotFoundError
from timebank.log import tree
from timebank.log.leaf import leaf_from_json
from timebank.log.models import ConsistencyProof, InclusionProof
from timebank.log.note import SIGNATURE_PREFIX, TlogProof


class NotYetLoggedError(DomainError):
    """The transaction has no leaf yet, or no signed checkpoint covers it yet."""

    code = "not_yet_logged"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


async def latest_checkpoint(db: Database) -> str:
    note: str | None = await db.fetchval("select note from log_checkpoints order by tree_size desc limit 1")
    if note is None:
        raise NotFoundError("no checkpoint has been signed yet")
    return note


@dataclass(frozen=True)
class CheckpointSummary:
    """The latest signed checkpoint as a person reads it: how many leaves, the root, when, by whom."""

    tree_size: int
    root: str  # base64, as the checkpoint's note writes it
    signed_at: datetime
    origin: str
    signers: list[str]


async def latest_checkpoint_summary(db: Database) -> CheckpointSummary | None:
    """The latest signed checkpoint, or None before the first is signed."""
    row = await db.fetchrow(
        "select tree_size, root_hash, signed_at, note from log_checkpoints order by tree_size desc limit 1"
    )
    if row is None:
        return None
    note: str = row["note"]
    body, _, signatures = note.rpartition("\n\n")
    signers = [
        line[len(SIGNATURE_PREFIX) :].rpartition(" ")[0]
        for line in signatures.split("\n")
        if line.startswith(SIGNATURE_PREFIX)
    ]
    return CheckpointSummary(
        tree_size=row["tree_size"],
        root=_b64(row["root_hash"]),
        signed_at=row["signed_at"],
        origin=body.split("\n", 1)[0],
        signers=signers,
    )


async def inclusion_proof(
    db: Database, transaction_id: uuid.UUID, tree_size: int | None, seal_interval_seconds: float
) -> InclusionProof:
    """The proof of a transaction (whose reader the caller was found to be) against a signed checkpoint."""

    async def work(conn: Any) -> InclusionProof:
        found = await conn.fetchrow("select * from log_inclusion($1, $2)", transaction_id, tree_size)
        index, latest, size = found["leaf_index"], found["latest"], found["tree_size"]
        if index is None or latest is None or index >= latest:
            raise NotYetLoggedError(
                "the transaction is not in the public log yet; retry shortly", max(1, math.ceil(seal_interval_seconds))
            )
        if size > latest:
            raise NotYetLoggedError(
                f"no checkpoint of {size} leaves is signed yet; the latest has {latest}",
                max(1, math.ceil(seal_interval_seconds)),
            )
        checkpoint = found["note"]
        if checkpoint is None or size <= index:
            raise DomainError(
                code="invalid_tree_size",
                detail=f"tree_size {size} is not the size of a signed checkpoint that contains leaf {index}",
                errors=[{"field": "tree_size", "message": f"use a signed size above {index}, at most {latest}"}],
            )
        stored = {
            (level, node): bytes(h)
            for level, node, h in zip(found["levels"], found["indexes"], found["hashes"], strict=True)
        }
        leaf_hash, path = tree.inclusion_from(stored, index, size)
        extra = leaf_from_json(found["leaf"])
        return InclusionProof(
            leaf_index=index,
            tree_size=size,
            leaf_hash=_b64(leaf_hash),
            inclusion_path=[_b64(h) for h in path],
            checkpoint=checkpoint,
            tlog_proof=TlogProof(index, path, checkpoint, extra).encode(),
        )

    return await db.run(work)


async def consistency_proof(db: Database, first: int, second: int, seal_interval_seconds: float) -> ConsistencyProof:
    async def work(conn: Any) -> ConsistencyProof:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            latest = await conn.fetchval("select coalesce(max(tree_size), 0) from log_checkpoints")
            if first > second:
                raise DomainError(
                    code="invalid_tree_size",
                    detail="first is larger than second",
                    errors=[{"field": "first", "message": "larger than second"}],
                )
            if second > latest:
                raise NotYetLoggedError(
                    f"no checkpoint of {second} leaves is signed yet; the latest has {latest}",
                    max(1, math.ceil(seal_interval_seconds)),
                )
            path = await tree.consistency_path(conn, first, second)
        return ConsistencyProof(first=first, second=second, path=[_b64(h) for h in path])

    return await db.run(work)
