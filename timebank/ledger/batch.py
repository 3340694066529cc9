"""Coalescing writes: concurrent requests of one operation posted by one statement and one commit.

While a batch is in the database, the requests that arrive wait in a queue; the next batch takes all
of them (up to `max_size`). At low load a request goes alone and waits for nothing; under load the
commit, the round trip and every account lock are paid once per batch instead of once per request.

The set-based SQL operation (post_credits, ...) posts only the requests that certainly succeed and
answers for those. Every other request, and every request of a batch that failed as a whole, is
handed back (None) to run through the single operation, which replays, refuses or posts it with its
exact rules, its own idempotency record and audit event. So one bad request never fails its
neighbours, and a batch is never more permissive than the requests one by one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from timebank.db import Database

log = structlog.get_logger(__name__)

Args = tuple[Any, ...]


@dataclass(frozen=True)
class BatchOperation:
    """The set-based twin of a single operation: its name and its arguments' SQL types."""

    function: str
    types: tuple[str, ...]

    def query(self) -> str:
        arrays = ", ".join(f"${i}::{t}[]" for i, t in enumerate(self.types, start=1))
        return f"select n, status_code, body::text as body from {self.function}({arrays})"


# Single operation -> its batch twin. Arguments: actor, request id, key, request hash, then the operation's own.
BATCHED: dict[str, BatchOperation] = {
    "post_credit": BatchOperation("post_credits", ("uuid", "text", "text", "bytea", "uuid", "bigint", "date", "text")),
    "post_redemption": BatchOperation(
        "post_redemptions", ("uuid", "text", "text", "bytea", "uuid", "bigint", "text", "uuid")
    ),
    "post_transfer": BatchOperation(
        "post_transfers", ("uuid", "text", "text", "bytea", "uuid", "uuid", "boolean", "bigint", "text")
    ),
}


@dataclass(frozen=True)
class BatchResult:
    status_code: int
    body: str


class Coalescer:
    """Gathers the calls of one batch operation; at most `max_in_flight` batches at a time."""

    def __init__(self, db: Database, operation: BatchOperation, max_size: int, max_in_flight: int) -> None:
        self.db = db
        self.operation = operation
        self.query = operation.query()
        self.max_size = max_size
        self.max_in_flight = max_in_flight
        self._pending: list[tuple[Args, asyncio.Future[BatchResult | None]]] = []
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        # What it did so far: batches sent, requests the batches posted, the largest batch.
        self.batches = 0
        self.posted = 0
        self.largest = 0

    async def submit(self, args: Args) -> BatchResult | None:
        """The operation's answer when the batch posted it; None when it must run on its own."""
        future: asyncio.Future[BatchResult | None] = asyncio.get_running_loop().create_future()
        self._pending.append((args, future))
        if self._in_flight < self.max_in_flight:
            self._in_flight += 1
            task = asyncio.get_running_loop().create_task(self._drain())
            self._tasks.add(task)  # held until done: the loop keeps only weak references to tasks
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _drain(self) -> None:
        batch: list[tuple[Args, asyncio.Future[BatchResult | None]]] = []
        try:
            # Let the requests that arrived in the same turn of the loop join the first batch.
            await asyncio.sleep(0)
            while self._pending:
                batch, self._pending = self._pending[: self.max_size], self._pending[self.max_size :]
                results = await self._post([args for args, _ in batch])
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
                batch = []
        finally:
            self._in_flight -= 1
            if batch or (self._pending and self._in_flight == 0):
                # Leaving early (cancelled, or a bug): nobody else will answer these; each goes alone.
                for _, future in [*batch, *self._pending]:
                    if not future.done():
                        future.set_result(None)
                self._pending = []

    async def _post(self, calls: Sequence[Args]) -> list[BatchResult | None]:
        results: list[BatchResult | None] = [None] * len(calls)
        self.batches += 1
        self.largest = max(self.largest, len(calls))
        try:
            rows = await self.db.fetch(self.query, *(list(column) for column in zip(*calls, strict=True)))
            for row in rows:
                results[row["n"] - 1] = BatchResult(row["status_code"], row["body"])
        except Exception as exc:
            log.warning(
                "write_batch_failed",
                operation=self.operation.function,
                size=len(calls),
                error=type(exc).__name__,
                message=str(exc)[:200],
            )
            return [None] * len(calls)
        self.posted += len(rows)
        return results


class WriteBatches:
    """One coalescer per batched operation; `enabled` False sends every write alone."""

    def __init__(self, db: Database, max_size: int, max_in_flight: int) -> None:
        self.enabled = max_size > 1
        self._coalescers = {
            name: Coalescer(db, operation, max_size, max_in_flight) for name, operation in BATCHED.items()
        }

    def coalescer(self, function: str) -> Coalescer:
        return self._coalescers[function]

    async def submit(self, function: str, args: Args) -> BatchResult | None:
        coalescer = self._coalescers.get(function) if self.enabled else None
        if coalescer is None:
            return None
        return await coalescer.submit(args)
