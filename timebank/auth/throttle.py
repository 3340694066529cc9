"""Slowing token guessing: a budget of failed authentications per client address.

Each address may fail `per_minute` times a minute (a token bucket refilled continuously). Over
budget, its requests are answered 429 before any token is looked up, except for tokens that
authenticated recently (the positive cache), so a legitimate caller behind the same address keeps
working and callers at other addresses never notice. Memory is bounded: the oldest addresses are
forgotten first.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

MAX_ADDRESSES = 100_000


class AuthThrottle:
    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate_per_second = per_minute / 60.0
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _level(self, address: str) -> float:
        now = self.clock()
        tokens, updated = self._buckets.get(address, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - updated) * self.rate_per_second)
        self._buckets[address] = (tokens, now)
        self._buckets.move_to_end(address)
        while len(self._buckets) > MAX_ADDRESSES:
            self._buckets.popitem(last=False)
        return tokens

    def allows(self, address: str) -> bool:
        """Whether `address` may try an unknown token now."""
        return self._level(address) >= 1.0

    def record_failure(self, address: str) -> None:
        tokens = self._level(address)
        self._buckets[address] = (tokens - 1.0, self.clock())

    def retry_after_seconds(self, address: str) -> int:
        """Seconds until `address` may try again."""
        missing = 1.0 - self._level(address)
        return max(1, math.ceil(missing / self.rate_per_second)) if missing > 0 else 0


class TokenCache:
    """Recently authenticated token hashes and their principals, for `ttl_seconds` at most."""

    def __init__(self, ttl_seconds: float, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[bytes, tuple[object, float]] = OrderedDict()

    def get(self, digest: bytes) -> object | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        value, expires = entry
        if expires <= self.clock():
            del self._entries[digest]
            return None
        return value

    def put(self, digest: bytes, value: object) -> None:
        if self.ttl_seconds <= 0:
            return
        self._entries[digest] = (value, self.clock() + self.ttl_seconds)
        self._entries.move_to_end(digest)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
