"""`timebank verify` checks the service requests too: a completed request has exactly its one
transaction and a captured hold, a cancelled one none and a released hold; each planted
violation (a superuser behind the service's back, triggers off) is named with the request."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import asyncpg
import pytest

from tests.cli.test_verify import run_verify, violations
from tests.services import requests_sql as sr
from tests.sql.support import Ledger, app_connect, owner_connect


@dataclass
class Requests:
    url: str
    owner: asyncpg.Connection
    completed: uuid.UUID
    paid_by_community: uuid.UUID
    cancelled: uuid.UUID
    open: uuid.UUID


@pytest.fixture
async def requests(fresh_db: str) -> AsyncIterator[Requests]:
    app = await app_connect(fresh_db)
    owner = await owner_connect(fresh_db)
    try:
        ledger = await Ledger.with_new_admin(app, fresh_db)
        community = await ledger.community(slug="tampered")
        donor = await ledger.member(community, "volunteer")
        elder = await ledger.member(community, "resident")
        volunteer = await ledger.member(community, "volunteer")
        await ledger.credit(donor, 240)
        await ledger.gift(donor, elder, 240)
        as_elder = ledger.acting_as(elder.principal_id)
        as_volunteer = ledger.acting_as(volunteer.principal_id)
        completed = (await sr.create(as_elder, elder)).body["id"]
        await sr.done(as_elder, as_volunteer, completed, 45)
        paid_by_community = (await sr.create(ledger, elder, funding="community")).body["id"]
        await sr.done(as_elder, as_volunteer, paid_by_community, 60)
        cancelled = (await sr.create(as_elder, elder)).body["id"]
        await sr.assign(as_volunteer, cancelled)
        await sr.cancel(as_elder, cancelled)
        still_open = (await sr.create(as_elder, elder)).body["id"]
        yield Requests(fresh_db, owner, *(uuid.UUID(i) for i in (completed, paid_by_community, cancelled, still_open)))
    finally:
        await app.close()
        await owner.close()


async def test_verify_passes_with_requests_in_every_state(requests: Requests) -> None:
    code, out, err = await run_verify(requests.url)
    assert code == 0, out + err
    for name in ("service_requests_paid_once", "service_request_holds_resolved"):
        assert any(line.split()[:2] == [name, "ok"] for line in out.splitlines()), out


async def _completed_set_back_to_reported(r: Requests) -> list[uuid.UUID]:
    await r.owner.execute("update service_requests set status = 'reported' where id = $1", r.completed)
    return [r.completed]


async def _open_marked_completed(r: Requests) -> list[uuid.UUID]:
    await r.owner.execute("update service_requests set status = 'completed' where id = $1", r.open)
    return [r.open]


async def _transaction_moved_to_the_cancelled_request(r: Requests) -> list[uuid.UUID]:
    async with r.owner.transaction():
        await r.owner.execute("set local session_replication_role = replica")
        await r.owner.execute(
            "update transactions set service_request_id = $2 where service_request_id = $1",
            r.paid_by_community,
            r.cancelled,
        )
    return [r.cancelled, r.paid_by_community]


async def _hold_released_behind_the_requests_back(r: Requests) -> list[uuid.UUID]:
    hold = await r.owner.fetchrow(
        "select h.id, h.account_id, h.minutes from holds h join service_requests s on s.hold_id = h.id where s.id = $1",
        r.open,
    )
    await r.owner.execute(
        "insert into hold_resolutions (hold_id, status, resolved_by) values ($1, 'released', 'someone')", hold["id"]
    )
    await r.owner.execute(
        "update accounts set held_minutes = held_minutes - $2 where id = $1", hold["account_id"], hold["minutes"]
    )
    return [r.open]


async def _cancelled_requests_hold_pending_again(r: Requests) -> list[uuid.UUID]:
    hold = await r.owner.fetchrow(
        "select h.id, h.account_id, h.minutes from holds h join service_requests s on s.hold_id = h.id where s.id = $1",
        r.cancelled,
    )
    async with r.owner.transaction():
        await r.owner.execute("set local session_replication_role = replica")
        await r.owner.execute("delete from hold_resolutions where hold_id = $1", hold["id"])
        await r.owner.execute(
            "update accounts set held_minutes = held_minutes + $2 where id = $1", hold["account_id"], hold["minutes"]
        )
    return [r.cancelled]


Plant = Callable[[Requests], Awaitable[list[uuid.UUID]]]
PLANTED: dict[str, tuple[Plant, set[str]]] = {
    "completed_set_back_to_reported": (
        _completed_set_back_to_reported,
        {"service_requests_paid_once", "service_request_holds_resolved"},
    ),
    "open_marked_completed": (_open_marked_completed, {"service_requests_paid_once", "service_request_holds_resolved"}),
    "transaction_moved_to_the_cancelled_request": (
        _transaction_moved_to_the_cancelled_request,
        {"service_requests_paid_once"},
    ),
    "hold_released_behind_the_requests_back": (
        _hold_released_behind_the_requests_back,
        {"service_request_holds_resolved"},
    ),
    "cancelled_requests_hold_pending_again": (
        _cancelled_requests_hold_pending_again,
        {"service_request_holds_resolved"},
    ),
}


@pytest.mark.parametrize("planted", list(PLANTED))
async def test_verify_names_each_planted_violation(requests: Requests, planted: str) -> None:
    plant, expected = PLANTED[planted]
    named = await plant(requests)
    code, out, err = await run_verify(requests.url)
    assert code == 1, out + err
    found = violations(out)
    failed = {line.removeprefix("VIOLATION ").split(":", 1)[0] for line in found}
    assert expected <= failed, out
    for request_id in named:
        assert any(f"service request {request_id}" in line for line in found), out
