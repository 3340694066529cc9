"""Only what a business rule decided (and successes) is remembered under an Idempotency-Key.

Refusals for authentication, authorisation, reach, validation, size, media type, throttling and
unavailability say nothing lasting about the request: each test below is refused for one of those
causes, the cause is then fixed, and a retry with the same key and body proceeds (201, fresh).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import msgspec
from litestar.testing import AsyncTestClient

from tests.client import Api
from timebank.app import create_app
from timebank.auth.throttle import AuthThrottle
from timebank.config import Settings
from timebank.errors import CODES

PROBLEM = "application/problem+json"


@contextlib.asynccontextmanager
async def api_with(settings: Settings, database: str, admin_token: str, **changes: Any) -> AsyncIterator[Api]:
    app = create_app(msgspec.structs.replace(settings, **changes), database)
    async with AsyncTestClient(app=app, raise_server_exceptions=False) as client:
        yield Api(client, admin_token)


def refused(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["code"] == code
    assert "idempotent-replayed" not in response.headers


def fresh_success(response: Any) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    assert "idempotent-replayed" not in response.headers
    body: dict[str, Any] = response.json()
    return body


def test_the_registry_remembers_exactly_the_business_rules() -> None:
    not_remembered = {code for code, entry in CODES.items() if not entry.remembered}
    assert {
        "invalid_request",
        "idempotency_key_required",
        "unauthenticated",
        "forbidden",
        "not_found",
        "method_not_allowed",
        "request_too_large",
        "unsupported_media_type",
        "idempotency_key_reused",
        "too_many_requests",
        "too_many_attempts",
        "internal_error",
        "conflict_retry",
        "unavailable",
    } <= not_remembered
    assert {"insufficient_balance", "amount_out_of_range", "already_reversed", "hold_not_pending"}.isdisjoint(
        not_remembered
    )


async def test_forbidden_then_granted(settings: Settings, database: str, admin_token: str, owner: Any) -> None:
    """The issue's case: a volunteer's pool grant is refused; once the role is granted, it proceeds."""
    async with api_with(settings, database, admin_token, token_cache_seconds=0.0) as api:
        community = await api.community()
        donor = await api.member(community, "volunteer")
        assert (await api.credit(donor, 60)).status_code == 201
        donation = {"from_member_id": donor.id, "to_pool": True, "minutes": 60, "description": "捐赠"}
        assert (await api.post("/v1/transfers", donor.token, donation)).status_code == 201
        helper = await api.member(community, "volunteer")
        grant = {"member_id": donor.id, "minutes": 30, "description": "发放"}
        key = uuid.uuid4().hex
        refused(await api.post("/v1/pool-grants", helper.token, grant, key=key), 403, "forbidden")
        await owner.execute("update members set roles = array['volunteer', 'coordinator'] where id = $1", helper.id)
        fresh_success(await api.post("/v1/pool-grants", helper.token, grant, key=key))


async def test_not_found_is_not_remembered(api: Api) -> None:
    community = await api.community()
    volunteer = await api.member(community, "volunteer")
    key = uuid.uuid4().hex
    body = {"member_id": str(uuid.uuid4()), "minutes": 60, "service_date": "2026-11-01"}
    refused(await api.post("/v1/credits", api.admin_token, body, key=key), 404, "not_found")
    # The same key is free for the request the caller meant.
    body["member_id"] = volunteer.id
    fresh_success(await api.post("/v1/credits", api.admin_token, body, key=key))


async def test_unauthenticated_then_signed_in(api: Api) -> None:
    community = await api.community()
    volunteer = await api.member(community, "volunteer")
    key = uuid.uuid4().hex
    body = {"member_id": volunteer.id, "minutes": 60, "service_date": "2026-11-01"}
    refused(await api.post("/v1/credits", "tb_wrong_" + uuid.uuid4().hex, body, key=key), 401, "unauthenticated")
    fresh_success(await api.post("/v1/credits", api.admin_token, body, key=key))


async def test_malformed_then_corrected(api: Api) -> None:
    community = await api.community()
    volunteer = await api.member(community, "volunteer")
    key = uuid.uuid4().hex
    body = {"member_id": volunteer.id, "minutes": "60", "service_date": "2026-11-01"}
    refused(await api.post("/v1/credits", api.admin_token, body, key=key), 400, "invalid_request")
    body["minutes"] = 60
    fresh_success(await api.post("/v1/credits", api.admin_token, body, key=key))


async def test_too_large_then_trimmed(settings: Settings, database: str, admin_token: str) -> None:
    async with api_with(settings, database, admin_token, max_body_bytes=400) as api:
        community = await api.community()
        volunteer = await api.member(community, "volunteer")
        key = uuid.uuid4().hex
        body = {"member_id": volunteer.id, "minutes": 60, "service_date": "2026-11-01", "description": "x" * 500}
        refused(await api.post("/v1/credits", api.admin_token, body, key=key), 413, "request_too_large")
        body["description"] = "served"
        fresh_success(await api.post("/v1/credits", api.admin_token, body, key=key))


async def test_wrong_media_type_then_json(api: Api) -> None:
    community = await api.community()
    volunteer = await api.member(community, "volunteer")
    key = uuid.uuid4().hex
    body = {"member_id": volunteer.id, "minutes": 60, "service_date": "2026-11-01"}
    headers = {**api.auth(api.admin_token), "Idempotency-Key": key, "Content-Type": "text/plain"}
    response = await api.client.post("/v1/credits", content=json.dumps(body), headers=headers)
    refused(response, 415, "unsupported_media_type")
    fresh_success(await api.post("/v1/credits", api.admin_token, body, key=key))


async def test_throttled_then_allowed(settings: Settings, database: str, admin_token: str) -> None:
    async with api_with(settings, database, admin_token, auth_failures_per_minute=2) as api:
        community = await api.community()
        volunteer = await api.member(community, "volunteer")
        coordinator = await api.member(community, "coordinator")  # its token has not authenticated yet
        for i in range(2):
            assert (await api.get("/v1/me", f"tb_guess_{i}")).status_code == 401
        key = uuid.uuid4().hex
        body = {"member_id": volunteer.id, "minutes": 60, "service_date": "2026-11-01"}
        refused(await api.post("/v1/credits", coordinator.token, body, key=key), 429, "too_many_requests")
        # The minute passes (a fresh bucket stands for it); the same key now proceeds.
        api.client.app.state.auth_throttle = AuthThrottle(settings.auth_failures_per_minute)
        fresh_success(await api.post("/v1/credits", coordinator.token, body, key=key))


async def test_unavailable_then_back(
    settings: Settings, database: str, admin_token: str, owner: asyncpg.Connection
) -> None:
    """A write that timed out behind a lock (503 unavailable) moved nothing; retried, it proceeds."""
    async with api_with(settings, database, admin_token, statement_timeout_ms=300, write_batch_max_size=1) as api:
        community = await api.community()
        volunteer = await api.member(community, "volunteer")
        key = uuid.uuid4().hex
        body = {"member_id": volunteer.id, "minutes": 60, "service_date": "2026-11-01"}
        async with owner.transaction():
            await owner.execute("select 1 from accounts where id = $1 for update", volunteer.account_id)
            response = await api.post("/v1/credits", api.admin_token, body, key=key)
            refused(response, 503, "unavailable")
            assert response.headers["retry-after"] == "1"
        fresh_success(await api.post("/v1/credits", api.admin_token, body, key=key))
        assert await api.balance(volunteer.account_id) == 60


async def test_a_business_rule_is_still_remembered(api: Api) -> None:
    """The other side: insufficient balance is the rule's answer, replayed even after the balance grows."""
    community = await api.community()
    volunteer = await api.member(community, "volunteer", "resident")
    key = uuid.uuid4().hex
    body = {"member_id": volunteer.id, "minutes": 60, "description": "助餐"}
    first = await api.post("/v1/redemptions", volunteer.token, body, key=key)
    assert first.status_code == 422
    assert (await api.credit(volunteer, 120)).status_code == 201
    again = await api.post("/v1/redemptions", volunteer.token, body, key=key)
    assert again.status_code == 422
    assert again.headers["idempotent-replayed"] == "true"
