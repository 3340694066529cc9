"""The database: connection pool, SQLSTATE translation and bounded retries of conflicts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import asyncpg
import structlog
from asyncpg.pool import PoolConnectionProxy

from timebank.config import Settings
from timebank.errors import (
    ConflictRetryError,
    DomainError,
    InvalidRequestError,
    UnavailableError,
    problem_from_code,
)

log = structlog.get_logger(__name__)

T = TypeVar("T")
# What the pool lends: a proxy with the Connection API.
if TYPE_CHECKING:
    Connection: TypeAlias = PoolConnectionProxy[asyncpg.Record]
else:
    Connection = PoolConnectionProxy

# Unique and check constraints whose violation is a client's mistake, by constraint name.
CONSTRAINT_CODES: dict[str, str] = {
    "communities_slug_key": "community_exists",
    "members_community_id_phone_key": "member_exists",
    "members_community_id_external_ref_key": "member_exists",
    "transactions_reverses_key": "already_reversed",
    "hold_resolutions_pkey": "hold_not_pending",
    "transactions_hold_id_key": "hold_not_pending",
}

# For constraints a client meets in the normal course: the problem's detail as a plain sentence,
# and the request field it is about (`errors`). The others say which rule refused the request.
CONSTRAINT_DETAILS: dict[str, tuple[str, str, str]] = {
    "communities_slug_key": (
        "a community with this slug already exists",
        "$.slug",
        "already used by another community",
    ),
    "members_community_id_phone_key": (
        "another member of this community already has this phone",
        "$.phone",
        "already used by another member of this community",
    ),
    "members_community_id_external_ref_key": (
        "another member of this community already has this external_ref",
        "$.external_ref",
        "already used by another member of this community",
    ),
}

RETRYABLE = (asyncpg.SerializationError, asyncpg.DeadlockDetectedError)


# Errors that say the connection itself is unusable: the server went away, the session was
# terminated, or the client lost track of the protocol. The request may be retried elsewhere.
CONNECTION_FAULTS = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
)


def _constraint_error(name: str) -> DomainError:
    """The DomainError for a violated unique or check constraint, by its name."""
    code = CONSTRAINT_CODES.get(name, "invalid_request")
    if name in CONSTRAINT_DETAILS:
        detail, field, message = CONSTRAINT_DETAILS[name]
        return problem_from_code(code, detail, errors=[{"field": field, "message": message}])
    return problem_from_code(code, f"rejected by rule {name}" if name else "rejected by a database rule")


def translate(exc: BaseException) -> DomainError | None:
    """Map a database error to the DomainError it stands for, or None when it is a bug."""
    if isinstance(exc, CONNECTION_FAULTS):
        return UnavailableError("the database is not available")
    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = getattr(exc, "sqlstate", None)
        if sqlstate in ("TB000", "TB901"):
            extra: dict[str, Any] = {}
            hint = getattr(exc, "hint", None)
            if hint:
                try:
                    extra = json.loads(hint)
                except ValueError:
                    extra = {}
            return problem_from_code(getattr(exc, "detail", None) or "invalid_request", exc.args[0], **extra)
        if isinstance(exc, asyncpg.UniqueViolationError | asyncpg.CheckViolationError):
            return _constraint_error(getattr(exc, "constraint_name", None) or "")
        if isinstance(
            exc,
            asyncpg.NotNullViolationError
            | asyncpg.InvalidTextRepresentationError
            | asyncpg.StringDataRightTruncationError
            | asyncpg.NumericValueOutOfRangeError
            | asyncpg.CharacterNotInRepertoireError
            | asyncpg.UntranslatableCharacterError
            | asyncpg.InvalidDatetimeFormatError
            | asyncpg.DatetimeFieldOverflowError,
        ):
            return InvalidRequestError("a value in the request is not acceptable")
        if isinstance(exc, asyncpg.QueryCanceledError):
            return UnavailableError("the database took too long to answer")
    return None


class ServiceConnection(asyncpg.Connection):
    """A pooled connection whose release costs no round trip.

    The pool normally sends RESET ALL, CLOSE ALL, UNLISTEN * and pg_advisory_unlock_all() on every
    release. The service never changes session state (settings come from the startup packet, locks
    are transaction-scoped, no cursors or listeners), and asyncpg still rolls back any open
    transaction, so the reset is pure cost on the hot path.
    """

    def get_reset_query(self) -> str:
        return ""


# The service's pooled sessions look rows up by key or read short index ranges (statements, lists,
# as-of balances). Each connection keeps a generic plan of every prepared statement after five runs,
# planned with the statistics of that moment: on a new deployment analyzed while postings and
# transactions were empty, a sequential scan, kept while they grow (issue 13). Here no sequential
# scan is chosen where an index serves, so the cached plans stay index plans at every size; the
# monthly reports, which read a month of a community, opt back in (sql/functions/90_reports.sql).
SERVICE_PLANNER_SETTINGS = {"enable_seqscan": "off"}


def connect_kwargs(settings: Settings, dsn: str) -> dict[str, Any]:
    """Connection arguments for the service role: the owner URL's server, the app role's name."""
    kwargs: dict[str, Any] = {
        "dsn": dsn,
        "user": settings.db_app_role,
        "server_settings": {
            "search_path": "timebank",
            "timezone": "UTC",
            "statement_timeout": str(settings.statement_timeout_ms),
            "application_name": "timebank",
        },
    }
    if settings.db_app_password:
        kwargs["password"] = settings.db_app_password
    return kwargs


class Database:
    """The service's pool, with database errors translated and conflicts retried."""

    def __init__(self, pool: asyncpg.Pool, settings: Settings) -> None:
        self.pool = pool
        self.settings = settings

    @classmethod
    async def connect(cls, settings: Settings, dsn: str) -> Database:
        kwargs = connect_kwargs(settings, dsn)
        kwargs["server_settings"] |= SERVICE_PLANNER_SETTINGS
        pool = await asyncpg.create_pool(
            min_size=min(settings.pool_min_size, settings.pool_max_size),
            max_size=settings.pool_max_size,
            max_inactive_connection_lifetime=300,
            connection_class=ServiceConnection,
            **kwargs,
        )
        return cls(pool, settings)

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """A pooled connection; database failures leave as DomainErrors.

        A connection that failed at the connection level is closed rather than handed to the next
        request: after a server restart it may be half-dead or out of step with the protocol.
        """
        try:
            conn = await self.pool.acquire(timeout=self.settings.pool_acquire_timeout_seconds)
        except Exception as exc:
            # Any refusal to open a connection (a database not accepting connections or dropped, a
            # server starting up) leaves the database unavailable to this request, whatever its
            # SQLSTATE: 503, never a 500.
            if isinstance(exc, (*CONNECTION_FAULTS, asyncpg.PostgresError)):
                raise UnavailableError("the database is not available") from exc
            raise
        try:
            yield conn
        except DomainError:
            raise
        except BaseException as exc:
            if isinstance(exc, (*CONNECTION_FAULTS, asyncio.CancelledError)):
                # A connection the server closed mid-query may already be back in the pool's hands;
                # terminating it again must not replace the fault with "released back to the pool".
                with contextlib.suppress(asyncpg.InterfaceError):
                    conn.terminate()
            mapped = translate(exc) if isinstance(exc, Exception) else None
            if mapped is None:
                raise
            raise mapped from exc
        finally:
            await self.pool.release(conn)

    async def run(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        """Run `work` on a connection, retrying serialization failures and deadlocks (bounded)."""
        attempts = self.settings.conflict_retries + 1
        for attempt in range(attempts):
            try:
                async with self.connection() as conn:
                    return await work(conn)
            except RETRYABLE as exc:
                log.info("transaction_retried", attempt=attempt + 1, sqlstate=exc.sqlstate)
                await asyncio.sleep(random.uniform(0, 0.005 * 2**attempt))  # noqa: S311 -- jitter, not a secret.
        raise ConflictRetryError("the write kept conflicting with concurrent writes; retry with the same key")

    async def record_refusal(
        self, action: str, principal_id: str | None, request_id: str, details: dict[str, Any]
    ) -> None:
        """Record a refused request (`request.denied` or `write.rejected`) in the audit trail."""
        await self.fetchval(
            "select record_refused_request($1, $2::uuid, $3, $4::text::jsonb)",
            action,
            principal_id,
            request_id,
            json.dumps(details),
        )

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        return await self.run(lambda conn: conn.fetchrow(query, *args))

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        return await self.run(lambda conn: conn.fetch(query, *args))

    async def fetchval(self, query: str, *args: Any) -> Any:
        return await self.run(lambda conn: conn.fetchval(query, *args))
