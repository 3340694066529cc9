"""Each caller's last write position, kept on the primary so that every process and instance finds it.

A caller may write through one worker process (or one instance behind a load balancer) and read
through another at once: the position its reads must wait for cannot live in the process that
served the write. It lives in the primary's UNLOGGED table `read_positions` (migration 0015):

- after a write, one round trip stores the primary's WAL insert position for the caller
  (`note_read_position`, a key upsert that keeps the later of two positions);
- before a read, one round trip reads it back (`read_position`, two key lookups), with the floor;
- the monitor now and then raises the floor to what every standby in use has replayed and drops the
  callers' positions below it (`forget_read_positions`), so the table holds recent writers only.

Unlogged, the table costs no WAL and its commits wait for no flush; crash recovery of the primary
empties it. The floor row covers that: found missing it is set to the primary's position then, past
every write acknowledged before the crash. The service role reaches the table only through these
three functions (sql/functions/98_read_positions.sql).

A position that could not be stored (the primary did not answer in time) is remembered in this
process, which stores one before that caller's next read here; other processes cannot know of it.
"""

from __future__ import annotations

import asyncio

import asyncpg
import structlog

from timebank.db import Database
from timebank.errors import DomainError

log = structlog.get_logger(__name__)

# Where a request keeps the caller's position once it has stored it (its token was looked up): its
# reads need not ask for it again.
READ_POSITION_KEY = "read_position"
# Failures that leave a position unknown: the read then goes to the primary, never a 5xx.
POSITION_FAULTS = (TimeoutError, DomainError, asyncpg.PostgresError)
# Callers whose position could not be stored, remembered at most this many (a primary that does
# not answer for long would otherwise grow the set without end).
UNSTORED_MAX = 100_000


class WritePositions:
    """The callers' positions on the primary, each call one round trip bounded by `timeout_seconds`."""

    def __init__(self, primary: Database, timeout_seconds: float) -> None:
        self.primary = primary
        self.timeout_seconds = timeout_seconds
        self.unstored: set[str] = set()

    async def note(self, caller: str) -> int | None:
        """Store the primary's position now as the caller's: its writes committed so far, and the
        rows its credentials were just found by, are at or before it. Returns the caller's position
        (at or past the floor), or None when it could not be stored."""
        try:
            async with asyncio.timeout(self.timeout_seconds):
                lsn = await self.primary.fetchval("select note_read_position($1)", caller)
        except POSITION_FAULTS as exc:
            log.warning("write_position_not_stored", caller=caller, error=type(exc).__name__)
            if len(self.unstored) < UNSTORED_MAX:
                self.unstored.add(caller)
            return None
        self.unstored.discard(caller)
        return int(lsn)

    async def required(self, caller: str) -> int | None:
        """The position a standby must have replayed to answer the caller: the later of its own and
        the floor. None: not known now (the read goes to the primary)."""
        if caller in self.unstored:
            # Its last write's position was not stored; any position stored now is past that write.
            return await self.note(caller)
        try:
            async with asyncio.timeout(self.timeout_seconds):
                lsn = await self.primary.fetchval("select read_position($1)", caller)
        except POSITION_FAULTS as exc:
            log.warning("write_position_unknown", caller=caller, error=type(exc).__name__)
            return None
        return int(lsn)

    async def forget(self, replayed: int) -> int:
        """Raise the floor to `replayed` (every standby in use is there) and drop the positions at or
        below it; how many were dropped."""
        async with asyncio.timeout(self.timeout_seconds):
            forgotten: int = await self.primary.fetchval("select forget_read_positions($1)", replayed)
        return forgotten
