"""One standby: its pool, what the monitor last saw of it, and whether reads may go there."""

from __future__ import annotations

import asyncio
import enum
import time
from collections import deque
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import msgspec
import structlog

from timebank.config import Settings
from timebank.db import SERVICE_PLANNER_SETTINGS, Database, ServiceConnection, connect_kwargs
from timebank.replicas.metrics import ReplicaMetrics

log = structlog.get_logger(__name__)


class StandbyState(enum.StrEnum):
    """Why a standby is (or is not) answering reads."""

    UNCHECKED = "unchecked"  # not yet seen by the monitor: not used
    IN_USE = "in_use"
    DOWN = "down"  # no answer within the check timeout, or a read on it failed at the connection
    BEHIND = "behind"  # more than the allowed bytes or seconds behind the primary
    NOT_STANDBY = "not_a_standby"  # answers, but is not in recovery (promoted, or a wrong URL)


def display_name(url: str) -> str:
    """host:port/database of a URL: what logs, metrics and /ready show, never a user or password."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = parts.port or 5432
    database = parts.path.lstrip("/") or "-"
    return f"{host}:{port}/{database}"


class Standby:
    """A standby's pool and state. The state changes only through `mark`, which logs and counts."""

    def __init__(
        self, name: str, database: Database, metrics: ReplicaMetrics, probe_kwargs: dict[str, Any] | None = None
    ) -> None:
        self.name = name
        self.database = database
        self.metrics = metrics
        # The monitor's own connection, outside the pool: a pool busy with reads is not a standby down.
        self.probe_kwargs = probe_kwargs
        self.probe_connection: asyncpg.Connection | None = None
        self.state = StandbyState.UNCHECKED
        self.reason = "not checked yet"
        # The highest replay position seen: what it has replayed at least (replay only moves forward).
        self.replay_lsn = 0
        self.lag_bytes: int | None = None
        self.lag_seconds: float | None = None
        metrics.in_use.labels(standby=name).set(0)

    @classmethod
    async def open(cls, settings: Settings, url: str, metrics: ReplicaMetrics) -> Standby:
        """A pool that connects lazily (a standby that is down at start does not stop the service)."""
        # Bounded waits on a standby: a read that cannot get a connection soon goes to the primary.
        timeout = settings.read_check_timeout_seconds
        standby_settings = msgspec.structs.replace(settings, pool_acquire_timeout_seconds=timeout, conflict_retries=0)
        kwargs = connect_kwargs(settings, url)
        kwargs["server_settings"] |= SERVICE_PLANNER_SETTINGS | {
            # A read that would write fails at once on the standby instead of in recovery, and the
            # same is asked of it even if it is promoted behind the service's back.
            "default_transaction_read_only": "on",
            "application_name": "timebank-reads",
        }
        pool = await asyncpg.create_pool(
            min_size=0,
            max_size=settings.read_pool_max_size,
            max_inactive_connection_lifetime=300,
            connection_class=ServiceConnection,
            timeout=timeout,
            **kwargs,
        )
        probe_kwargs = kwargs | {"timeout": timeout}
        probe_kwargs["server_settings"] = kwargs["server_settings"] | {"application_name": "timebank-reads-check"}
        return cls(display_name(url), Database(pool, standby_settings), metrics, probe_kwargs)

    async def probe(self) -> asyncpg.Record:
        """Whether it is in recovery and how far it has replayed, on the monitor's own connection."""
        if self.probe_connection is None or self.probe_connection.is_closed():
            self.probe_connection = await asyncpg.connect(**(self.probe_kwargs or {}))
        try:
            row = await self.probe_connection.fetchrow(
                "select pg_is_in_recovery() as in_recovery, pg_last_wal_replay_lsn() as replay_lsn"
            )
        except BaseException:
            # Whatever went wrong (including the monitor's timeout), the next check starts afresh.
            self.probe_connection.terminate()
            self.probe_connection = None
            raise
        assert row is not None
        return row

    async def close(self) -> None:
        """Close the pool; a standby that no longer answers does not hold up the service's shutdown."""
        if self.probe_connection is not None:
            self.probe_connection.terminate()
        try:
            async with asyncio.timeout(self.database.settings.pool_acquire_timeout_seconds):
                await self.database.close()
        except TimeoutError:
            self.database.pool.terminate()

    @property
    def in_use(self) -> bool:
        return self.state is StandbyState.IN_USE

    def saw_replay(self, lsn: int | None) -> None:
        if lsn is not None and lsn > self.replay_lsn:
            self.replay_lsn = lsn

    def mark(self, state: StandbyState, reason: str) -> None:
        """Enter `state`; a change is logged once and counted, so a flapping standby is visible."""
        self.metrics.in_use.labels(standby=self.name).set(1 if state is StandbyState.IN_USE else 0)
        if state is self.state:
            self.reason = reason
            return
        previous, self.state, self.reason = self.state, state, reason
        if state is StandbyState.IN_USE:
            log.info("standby_in_use", standby=self.name, previous=str(previous), replay_lsn=self.replay_lsn)
        else:
            self.metrics.skipped.labels(standby=self.name, reason=str(state)).inc()
            log.warning(
                "standby_skipped",
                standby=self.name,
                state=str(state),
                previous=str(previous),
                reason=reason,
                lag_bytes=self.lag_bytes,
                lag_seconds=self.lag_seconds,
            )


class PrimaryPositions:
    """Recent WAL positions of the primary with when they were seen, to tell a standby's lag in time.

    A standby's lag in seconds is how long ago the primary was last at a position the standby has
    replayed: zero on an idle system, where timestamps of the last replayed transaction would grow.
    """

    def __init__(self, keep_seconds: float) -> None:
        self.keep_seconds = keep_seconds
        self.samples: deque[tuple[float, int]] = deque()

    def add(self, lsn: int, at: float | None = None) -> None:
        now = time.monotonic() if at is None else at
        self.samples.append((now, lsn))
        while self.samples and self.samples[0][0] < now - self.keep_seconds:
            self.samples.popleft()

    @property
    def latest(self) -> int | None:
        return self.samples[-1][1] if self.samples else None

    def lag_seconds(self, replay_lsn: int, now: float | None = None) -> float | None:
        """Seconds since the primary was at a position at or before `replay_lsn` (None: no samples)."""
        if not self.samples:
            return None
        now = time.monotonic() if now is None else now
        # The first position it has not replayed: it has been behind since the primary was there.
        ahead = next((at for at, lsn in self.samples if lsn > replay_lsn), None)
        return 0.0 if ahead is None else max(0.0, now - ahead)
