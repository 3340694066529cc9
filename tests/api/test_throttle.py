"""Token guessing is throttled per address, without locking out callers who already authenticated."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import msgspec
from litestar.testing import AsyncTestClient

from tests.client import Api
from timebank.app import create_app
from timebank.auth.throttle import AuthThrottle, TokenCache
from timebank.config import Settings


@contextlib.asynccontextmanager
async def throttled_api(settings: Settings, database: str, admin_token: str) -> AsyncIterator[Api]:
    limited = msgspec.structs.replace(settings, auth_failures_per_minute=3)
    async with AsyncTestClient(app=create_app(limited, database), raise_server_exceptions=False) as client:
        yield Api(client, admin_token)


async def test_guessing_is_throttled_but_known_callers_continue(
    settings: Settings, database: str, admin_token: str
) -> None:
    async with throttled_api(settings, database, admin_token) as api:
        assert (await api.get("/v1/me", admin_token)).status_code == 200
        answers = [(await api.get("/v1/me", f"tb_guess_{i}")).status_code for i in range(5)]
        assert answers == [401, 401, 401, 429, 429]
        throttled = await api.get("/v1/me", "tb_guess_again")
        assert throttled.json()["code"] == "too_many_requests"
        assert int(throttled.headers["retry-after"]) >= 1
        assert throttled.headers["content-type"].startswith("application/problem+json")
        # The admin authenticated before the guessing started: still served from the same address.
        assert (await api.get("/v1/me", admin_token)).status_code == 200


def test_bucket_refills_over_time() -> None:
    now = [0.0]
    throttle = AuthThrottle(per_minute=2, clock=lambda: now[0])
    for _ in range(2):
        assert throttle.allows("a")
        throttle.record_failure("a")
    assert not throttle.allows("a")
    assert throttle.allows("b")  # other addresses are not affected
    assert throttle.retry_after_seconds("a") == 30
    now[0] = 30.0
    assert throttle.allows("a")


def test_token_cache_expires_and_is_bounded() -> None:
    now = [0.0]
    cache = TokenCache(ttl_seconds=10, max_entries=2, clock=lambda: now[0])
    cache.put(b"a", "A")
    cache.put(b"b", "B")
    cache.put(b"c", "C")
    assert cache.get(b"a") is None
    assert cache.get(b"c") == "C"
    now[0] = 10.0
    assert cache.get(b"c") is None
    TokenCache(ttl_seconds=0, max_entries=2).put(b"x", "X")
