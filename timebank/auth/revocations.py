"""A revoked token is refused at once, by every process of the service.

Each process caches the tokens it authenticated (TokenCache), so a revocation committed by one
process, or by `timebank token revoke`, must reach the others. Each process keeps one listener
connection subscribed to `timebank_token_revoked`; the SQL revocation notifies that channel, which
PostgreSQL delivers when the revocation commits. The listener evicts the token from its process's
cache and confirms on `timebank_token_evicted`. The revocation returns the listeners that were
subscribed before it committed (sql/functions/50_tokens.sql), and the revoker waits, up to
CONFIRM_SECONDS, until each has confirmed, before it answers.

While the listener is not subscribed (at start-up, after losing its connection, e.g. when the
database restarts) the cache is distrusted: every request authenticates against the database, and
the cache starts empty once the listener has subscribed again. A silently broken connection is
noticed by a ping every PING_SECONDS.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

import asyncpg
import structlog

from timebank.auth.throttle import TokenCache

log = structlog.get_logger(__name__)

REVOKED_CHANNEL = "timebank_token_revoked"
EVICTED_CHANNEL = "timebank_token_evicted"
# The application_name of a subscribed listener; revocations wait for the confirmations of these.
LISTENER_NAME = "timebank-token-listener"
# Taken shared while subscribing; a revocation takes it exclusively (see _revoke_token in SQL).
SUBSCRIBE_LOCK = "select pg_advisory_xact_lock_shared(hashtext('timebank.token_revocations'))"
# Longest a revoker waits for every listener's confirmation before answering anyway (and logging it).
CONFIRM_SECONDS = 2.0
# How often an idle listener checks that its connection still answers, and how long it gives it.
PING_SECONDS = 5.0
RECONNECT_DELAY_SECONDS_MIN = 0.05
RECONNECT_DELAY_SECONDS_MAX = 2.0


class Watch:
    """The listeners (by backend pid) that confirmed evicting one token."""

    def __init__(self) -> None:
        self.confirmed: set[int] = set()
        self.changed = asyncio.Event()

    async def wait_for(self, pids: Iterable[int], timeout_seconds: float) -> set[int]:
        """Wait until every one of `pids` has confirmed, at most `timeout_seconds`; returns those that did not."""
        expected = set(pids)
        deadline = asyncio.get_running_loop().time() + timeout_seconds
        while True:
            self.changed.clear()
            missing = expected - self.confirmed
            remaining = deadline - asyncio.get_running_loop().time()
            if not missing or remaining <= 0:
                return missing
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)


class Confirmations:
    """Evictions confirmed on EVICTED_CHANNEL, routed to whoever watches that token."""

    def __init__(self) -> None:
        self._watches: dict[str, list[Watch]] = {}

    def note(self, token_id: str, pid: int) -> None:
        for watch in self._watches.get(token_id, ()):
            watch.confirmed.add(pid)
            watch.changed.set()

    @contextlib.contextmanager
    def watching(self, token_id: object) -> Iterator[Watch]:
        """Collect confirmations for the token from now on (enter before revoking, so none is missed)."""
        key = str(token_id)
        watch = Watch()
        self._watches.setdefault(key, []).append(watch)
        try:
            yield watch
        finally:
            watches = self._watches[key]
            watches.remove(watch)
            if not watches:
                del self._watches[key]

    def on_notification(self, _connection: object, pid: int, _channel: str, payload: object) -> None:
        """An asyncpg listener callback for EVICTED_CHANNEL."""
        self.note(str(payload), pid)


class RevocationListener:
    """One process's subscription to revocations: keeps `cache` true to the database, or distrusted."""

    def __init__(self, cache: TokenCache, connect: Callable[[], Awaitable[asyncpg.Connection]]) -> None:
        self.cache = cache
        self.confirmations = Confirmations()
        self.subscribed = asyncio.Event()
        # The backend pid of the subscribed connection (None while not subscribed).
        self.pid: int | None = None
        self._connect = connect
        # Confirmations to send, and connections reported lost (each ends the loop serving it).
        self._outbox: asyncio.Queue[object] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def start(self, wait_seconds: float) -> None:
        """Start listening; wait up to `wait_seconds` for the first subscription (until then, no cache)."""
        self.cache.distrust()
        self._task = asyncio.create_task(self._run())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.subscribed.wait(), wait_seconds)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def revoked_here(self, token_id: object, listeners: Iterable[int], watch: Watch) -> None:
        """After this process revoked a token: forget it here, then wait for every listener's eviction."""
        self.cache.evict_token(token_id)
        missing = await watch.wait_for(listeners, CONFIRM_SECONDS)
        if missing:
            # Those processes drop the token when the notification reaches them; until then they may
            # still accept it from their caches (at most TIMEBANK_TOKEN_CACHE_SECONDS).
            log.warning("token_revocation_unconfirmed", token_id=str(token_id), listeners=sorted(missing))

    async def _run(self) -> None:
        delay = RECONNECT_DELAY_SECONDS_MIN
        quiet = False  # one warning per outage, not one per attempt to reconnect
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await self._connect()
                conn.add_termination_listener(self._on_lost)
                await self._subscribe(conn)
                self.cache.trust()
                self.pid = conn.get_server_pid()
                self.subscribed.set()
                log.info("token_listener_subscribed", pid=self.pid)
                delay, quiet = RECONNECT_DELAY_SECONDS_MIN, False
                await self._serve(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # whatever broke the connection: distrust, reconnect.
                report = log.debug if quiet else log.warning
                report("token_listener_lost", error=type(exc).__name__, detail=str(exc)[:200])
                quiet = True
            finally:
                self.subscribed.clear()
                self.pid = None
                self.cache.distrust()
                if conn is not None:
                    await _close(conn)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_DELAY_SECONDS_MAX)

    async def _subscribe(self, conn: asyncpg.Connection) -> None:
        """LISTEN, and take the name revocations look for, in one transaction under the shared lock."""
        async with conn.transaction():
            await conn.execute(SUBSCRIBE_LOCK)
            await conn.add_listener(REVOKED_CHANNEL, self._on_revoked)
            await conn.add_listener(EVICTED_CHANNEL, self.confirmations.on_notification)
            await conn.execute(f"set application_name = '{LISTENER_NAME}'")

    async def _serve(self, conn: asyncpg.Connection) -> None:
        """Send confirmations as evictions happen; ping when idle; return by raising when the connection is lost."""
        while True:
            try:
                item = await asyncio.wait_for(self._outbox.get(), PING_SECONDS)
            except TimeoutError:
                await conn.fetchval("select 1", timeout=PING_SECONDS)
                continue
            if isinstance(item, str):
                await conn.execute("select pg_notify($1, $2)", EVICTED_CHANNEL, item, timeout=PING_SECONDS)
            elif item is conn:
                raise ConnectionError("the listener's connection was closed")

    def _on_revoked(self, _connection: object, _pid: int, _channel: str, payload: object) -> None:
        self.cache.evict_token(payload)
        self._outbox.put_nowait(str(payload))

    def _on_lost(self, conn: object) -> None:
        self.cache.distrust()
        self._outbox.put_nowait(conn)


async def _close(conn: Any) -> None:
    if conn.is_closed():
        return
    try:
        await asyncio.wait_for(conn.close(), 1.0)
    except Exception:  # a connection that will not close politely is cut.
        conn.terminate()
