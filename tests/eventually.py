"""Waiting for things in tests: a bounded poll, never a bare sleep.

Some effects land after the answer that caused them: the audit event of a refused request is
written by a background task once the response has gone out, a hold expires when the clock passes
its `expires_at`, a process exits some time after its signal. A test that reads such an effect at
once passes on an idle machine and fails on a busy one. These helpers poll for the effect instead,
and fail with what they last saw when it does not come within the bound.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import asyncpg

T = TypeVar("T")

TIMEOUT_SECONDS = 15.0  # Generous: a bound for a busy machine, not an expectation of speed.
INTERVAL_SECONDS = 0.02


async def eventually(
    probe: Callable[[], Awaitable[T] | T],
    until: Callable[[T], object] = bool,
    *,
    seconds: float = TIMEOUT_SECONDS,
    interval: float = INTERVAL_SECONDS,
    what: str = "",
) -> T:
    """Call `probe` until `until(result)` is true, for at most `seconds` seconds; return that result.

    `probe` may be a plain function or a coroutine function. On timeout the AssertionError names
    `what` (or the probe) and the last result seen.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        outcome: Any = probe()
        value: T = await outcome if inspect.isawaitable(outcome) else outcome
        if until(value):
            return value
        if loop.time() >= deadline:
            name = what or getattr(probe, "__qualname__", repr(probe))
            raise AssertionError(f"{name}: still {value!r} after {seconds:g} s")
        await asyncio.sleep(interval)


async def clock_passes(conn: asyncpg.Connection, moment: datetime, *, seconds: float = TIMEOUT_SECONDS) -> None:
    """Wait until the database server's clock is past `moment` (a hold's expires_at, say).

    The database decides whether a hold has expired by its own clock, so that is the clock to ask.
    """
    await eventually(
        lambda: conn.fetchval("select clock_timestamp() > $1::timestamptz", moment),
        seconds=seconds,
        what=f"the database clock passing {moment.isoformat()}",
    )
