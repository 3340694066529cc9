"""Which database answers a read: a standby that has replayed the caller's own last write, else the primary.

Read-your-writes: after a write request, the primary's WAL insert position is stored for the
caller, on the primary, where every worker process and every instance of the service finds it
(positions.py). Its commit is at or before that position, so a standby whose replay position has
reached it shows the write. The same is done when a caller's token is looked up on the primary, so
that a member made a moment ago is never "not found" by its own first read. Before a request's
first read, one round trip to the primary reads the caller's position back. A read is sent to a
standby only when that standby is known to have replayed it (from the monitor, or asked on the
standby's connection just before the read); in every other case, and whenever a standby fails a
read, the read is answered by the primary. Callers who are not known yet (credentials not checked)
are read from the primary too; anonymous callers, who have written nothing, from any standby in use.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any, TypeVar

import asyncpg
import msgspec
import structlog

from timebank.config import Settings
from timebank.db import CONNECTION_FAULTS, Connection, Database
from timebank.errors import DomainError, UnavailableError
from timebank.replicas.metrics import ReplicaMetrics
from timebank.replicas.positions import POSITION_FAULTS, READ_POSITION_KEY, WritePositions
from timebank.replicas.standby import PrimaryPositions, Standby, StandbyState

log = structlog.get_logger(__name__)

T = TypeVar("T")

SAFE_METHODS = frozenset({"GET", "HEAD"})
READ_DATABASE_KEY = "read_database"
# How often a process drops the stored positions every standby in use has replayed.
FORGET_INTERVAL_SECONDS = 10.0


class StandbyStatus(msgspec.Struct, frozen=True):
    """A standby as /ready shows it: never its user or password."""

    name: str
    state: str
    in_use: bool
    reason: str
    lag_bytes: int | None
    lag_seconds: float | None


class NotReplayedError(Exception):
    """The standby has not yet replayed the caller's last write, so it may not answer the read."""


class ReadRouter:
    """The standbys, their monitor, and each caller's last write position (stored on the primary)."""

    def __init__(self, settings: Settings, primary: Database, standbys: list[Standby], metrics: ReplicaMetrics) -> None:
        self.settings = settings
        self.primary = primary
        self.standbys = standbys
        self.metrics = metrics
        self.written = WritePositions(primary, settings.read_check_timeout_seconds)
        self.next_forget = 0.0  # time.monotonic() from when the monitor next drops replayed positions
        keep = settings.read_max_lag_seconds + 2 * settings.read_check_interval_seconds + 1
        self.positions = PrimaryPositions(keep)
        self._monitor: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, settings: Settings, primary: Database) -> ReadRouter:
        metrics = ReplicaMetrics()
        standbys = [await Standby.open(settings, url, metrics) for url in settings.read_database_urls]
        router = cls(settings, primary, standbys, metrics)
        await router.check()
        router._monitor = asyncio.create_task(router.watch())
        return router

    async def close(self) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        for standby in self.standbys:
            await standby.close()

    # The monitor.

    async def watch(self) -> None:
        """Check every standby each interval until cancelled."""
        while True:
            await asyncio.sleep(self.settings.read_check_interval_seconds)
            try:
                await self.check()
            except Exception:  # The monitor must outlive any surprise; the next round tries again.
                log.exception("standby_check_failed")

    async def check(self) -> None:
        """One round: the primary's position first, then every standby at once (each bounded)."""
        try:
            async with asyncio.timeout(self.settings.read_check_timeout_seconds):
                self.positions.add(await self.primary.fetchval("select pg_current_wal_lsn()"))
        except (TimeoutError, DomainError):
            # Without the primary's position lag is unknown; a standby's use stands on its last check.
            log.warning("primary_position_unknown")
        await asyncio.gather(*(self.check_standby(standby) for standby in self.standbys))
        if time.monotonic() >= self.next_forget:
            self.next_forget = time.monotonic() + FORGET_INTERVAL_SECONDS
            await self.forget_replayed_writes()

    async def check_standby(self, standby: Standby) -> None:
        try:
            async with asyncio.timeout(self.settings.read_check_timeout_seconds):
                row = await standby.probe()
        except (*CONNECTION_FAULTS, asyncpg.PostgresError) as exc:
            standby.lag_bytes = standby.lag_seconds = None  # unknown while it does not answer
            standby.mark(StandbyState.DOWN, f"no answer to the check: {type(exc).__name__}")
            return
        if not row["in_recovery"]:
            standby.lag_bytes = standby.lag_seconds = None
            standby.mark(StandbyState.NOT_STANDBY, "not in recovery: promoted, or not a standby")
            return
        standby.saw_replay(row["replay_lsn"])
        primary_lsn = self.positions.latest
        standby.lag_bytes = None if primary_lsn is None else max(0, primary_lsn - standby.replay_lsn)
        standby.lag_seconds = self.positions.lag_seconds(standby.replay_lsn)
        self.metrics.lag_bytes.labels(standby=standby.name).set(standby.lag_bytes or 0)
        self.metrics.lag_seconds.labels(standby=standby.name).set(standby.lag_seconds or 0)
        if standby.lag_bytes is None or standby.lag_seconds is None:
            standby.mark(StandbyState.BEHIND, "the primary's position is unknown")
        elif standby.lag_bytes > self.settings.read_max_lag_bytes:
            standby.mark(StandbyState.BEHIND, f"{standby.lag_bytes} bytes behind")
        elif standby.lag_seconds > self.settings.read_max_lag_seconds:
            standby.mark(StandbyState.BEHIND, f"{standby.lag_seconds:.1f} s behind")
        else:
            standby.mark(StandbyState.IN_USE, "replaying")

    async def forget_replayed_writes(self) -> int:
        """Keep the stored positions few: the floor rises to what every standby in use has replayed,
        and the positions below it go (they no longer steer any read). How many went."""
        replayed = [standby.replay_lsn for standby in self.standbys if standby.in_use]
        if not replayed:
            return 0
        try:
            forgotten = await self.written.forget(min(replayed))
        except POSITION_FAULTS as exc:
            log.warning("write_positions_not_forgotten", error=type(exc).__name__)
            return 0
        return forgotten

    def status(self) -> list[StandbyStatus]:
        return [
            StandbyStatus(
                name=s.name,
                state=str(s.state),
                in_use=s.in_use,
                reason=s.reason,
                lag_bytes=s.lag_bytes,
                lag_seconds=None if s.lag_seconds is None else round(s.lag_seconds, 3),
            )
            for s in self.standbys
        ]

    # Read-your-writes.

    async def note_position(self, caller: str) -> int | None:
        """Store the primary's position now as the caller's (positions.py); the caller's position, or
        None when it could not be stored."""
        return await self.written.note(caller)

    async def required_lsn(self, caller: str | None) -> int | None:
        """The position a standby must have replayed to answer this caller; None: only the primary may.

        An anonymous caller (no credentials) has written nothing of its own: any standby in use may
        answer it, and no round trip is made."""
        if caller is None:
            return 0
        return await self.written.required(caller)

    def choose(self, required: int) -> Standby | None:
        """A standby in use, preferring those known to have replayed `required`; None if none is in use."""
        usable = [s for s in self.standbys if s.in_use]
        ready = [s for s in usable if s.replay_lsn >= required]
        if ready:
            return random.choice(ready)  # noqa: S311 -- spreading load, not a secret.
        return max(usable, key=lambda s: s.replay_lsn, default=None)

    def database_for(self, scope: MutableMapping[str, Any]) -> Database:
        """The database a request's reads use: the primary for writes, else a standby when it may."""
        if scope.get("method") not in SAFE_METHODS:
            return self.primary
        # One per request, so that a request that fell back to the primary stays there.
        state: dict[str, Any] = scope.setdefault("state", {})
        database = state.get(READ_DATABASE_KEY)
        if not isinstance(database, ReadDatabase):
            database = state[READ_DATABASE_KEY] = ReadDatabase(self, scope)
        return database

    def mark_failed(self, standby: Standby, exc: BaseException) -> None:
        """A read on the standby failed at the connection: out of use until the monitor sees it well."""
        standby.lag_bytes = standby.lag_seconds = None
        standby.mark(StandbyState.DOWN, f"a read failed: {type(exc).__name__}")


def caller_of(scope: Mapping[str, Any]) -> tuple[bool, str | None]:
    """(known, caller id): a request with credentials whose caller is not known yet is not `known`."""
    state = scope.get("state", {})
    caller = state.get("principal_id")
    if caller:
        return True, str(caller)
    headers = {name for name, _ in scope.get("headers", [])}
    # Credentials not yet checked (a bearer token, a session cookie): the caller may have just written.
    anonymous = b"authorization" not in headers and b"cookie" not in headers
    return anonymous, None


class ReadDatabase(Database):
    """A request's reads: on one standby while it may answer them, on the primary from then on.

    The standby is chosen at the first read, when the caller is known. Any failure on the standby
    that is not an answer (a lost connection, a timeout, a conflict with recovery, a statement that
    would write) sends the read, and the request's later reads, to the primary: reads only ever move
    forward in time within a request.
    """

    def __init__(self, router: ReadRouter, scope: Mapping[str, Any]) -> None:
        super().__init__(router.primary.pool, router.primary.settings)
        self.router = router
        self.scope = scope
        self.decided = False
        self.standby: Standby | None = None
        self.required = 0

    async def _decide(self) -> None:
        self.decided = True
        known, caller = caller_of(self.scope)
        if not known:
            self.router.metrics.fallbacks.labels(reason="caller_unknown").inc()
            return
        if not any(standby.in_use for standby in self.router.standbys):
            # Every read goes to the primary anyway: the caller's position is not asked for.
            self.router.metrics.fallbacks.labels(reason="no_standby_in_use").inc()
            return
        noted = self.scope.get("state", {}).get(READ_POSITION_KEY)
        required = noted if isinstance(noted, int) else await self.router.required_lsn(caller)
        if required is None:
            self.router.metrics.fallbacks.labels(reason="write_position_unknown").inc()
            return
        self.required = required
        self.standby = self.router.choose(required)
        if self.standby is None:
            self.router.metrics.fallbacks.labels(reason="no_standby_in_use").inc()

    async def run(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        if not self.decided:
            await self._decide()
        standby = self.standby
        if standby is not None:
            try:
                result = await self._on_standby(standby, work)
            except NotReplayedError:
                self.router.metrics.fallbacks.labels(reason="not_replayed").inc()
            except (UnavailableError, *CONNECTION_FAULTS) as exc:
                cause = exc.__cause__ if isinstance(exc, UnavailableError) else exc
                if isinstance(cause, TimeoutError | asyncpg.QueryCanceledError):
                    # Busy (no free connection in time) or slow (statement timeout): this read only;
                    # a standby that stopped answering altogether is the monitor's to find.
                    self.router.metrics.fallbacks.labels(reason="standby_slow").inc()
                else:
                    # Gone (refused, reset, shut down): out of use until the monitor sees it well.
                    self.router.metrics.fallbacks.labels(reason="standby_failed").inc()
                    self.router.mark_failed(standby, exc)
            except asyncpg.PostgresError as exc:
                # Not an answer the primary would give (say, a conflict with recovery): ask the primary.
                self.router.metrics.fallbacks.labels(reason="standby_error").inc()
                log.info("standby_read_refused", standby=standby.name, sqlstate=exc.sqlstate)
            else:
                self.router.metrics.reads.labels(target="standby", standby=standby.name).inc()
                return result
            self.standby = None
        self.router.metrics.reads.labels(target="primary", standby="").inc()
        return await self.router.primary.run(work)

    async def _on_standby(self, standby: Standby, work: Callable[[Connection], Awaitable[T]]) -> T:
        async with standby.database.connection() as conn:
            if self.required > standby.replay_lsn:
                # The monitor's last look is older than the caller's write: ask the standby itself.
                standby.saw_replay(await conn.fetchval("select pg_last_wal_replay_lsn()"))
                if self.required > standby.replay_lsn:
                    raise NotReplayedError
            return await work(conn)
