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
    """Recently authenticated token hashes and their principals, for `ttl_seconds` at most.

    Trusted only while something keeps it true to the database: a process's revocation listener
    (timebank/auth/revocations.py) trusts it once subscribed, evicts each revoked token, and
    distrusts it (empty, and answering nothing) whenever its connection is lost. The generation
    changes with every eviction, so a lookup that raced a revocation does not put back what the
    revocation took out: `put` stores only if the generation is still the one read before the lookup.
    """

    def __init__(
        self,
        ttl_seconds: float,
        max_entries: int,
        clock: Callable[[], float] = time.monotonic,
        *,
        trusted: bool = True,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self.clock = clock
        self.trusted = trusted
        self.generation = 0
        self._entries: OrderedDict[bytes, tuple[object, float, str | None]] = OrderedDict()
        self._by_token: dict[str, bytes] = {}

    def get(self, digest: bytes) -> object | None:
        if not self.trusted:
            return None
        entry = self._entries.get(digest)
        if entry is None:
            return None
        value, expires, _ = entry
        if expires <= self.clock():
            self._drop(digest)
            return None
        return value

    def put(self, digest: bytes, value: object, token_id: object = None, generation: int | None = None) -> None:
        """Remember `value`, unless untrusted or evictions happened since `generation` was read."""
        if self.ttl_seconds <= 0 or not self.trusted:
            return
        if generation is not None and generation != self.generation:
            return
        key = None if token_id is None else str(token_id)
        self._drop(digest)
        self._entries[digest] = (value, self.clock() + self.ttl_seconds, key)
        if key is not None:
            self._by_token[key] = digest
        while len(self._entries) > self.max_entries:
            self._drop(next(iter(self._entries)))

    def evict_token(self, token_id: object) -> None:
        """Forget the token with this id (it was revoked)."""
        self.generation += 1
        digest = self._by_token.get(str(token_id))
        if digest is not None:
            self._drop(digest)

    def trust(self) -> None:
        """Start trusting, empty: whatever was revoked before now is no longer remembered."""
        self._clear()
        self.trusted = True

    def distrust(self) -> None:
        """Stop trusting (and forget everything) until `trust` is called again."""
        self.trusted = False
        self._clear()

    def _clear(self) -> None:
        self.generation += 1
        self._entries.clear()
        self._by_token.clear()

    def _drop(self, digest: bytes) -> None:
        entry = self._entries.pop(digest, None)
        if entry is not None and entry[2] is not None and self._by_token.get(entry[2]) == digest:
            del self._by_token[entry[2]]
