"""Many clients at once: no lost update, no overdraft, every race resolved exactly once.

Most tests open 16 connections as the service role and call the SQL operations directly, so a
deadlock or a lost update shows itself instead of being hidden by the service's retries. A few go
through the HTTP API with asyncio.gather, served in this event loop so that the requests really
overlap (see tests.sql.support.concurrent_api); there the pool and the retries are part of the path.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass

import asyncpg
import pytest

from tests.client import Member as ApiMember
from tests.sql.support import Community, Ledger, Member, Result, ServedApi, app_connect, concurrent_api
from timebank.config import Settings
from timebank.ledger.verify import verify

CLIENTS = 16
# Fewer clients where a failure costs PostgreSQL's deadlock_timeout (1 s) per deadlock.
RACERS = 8


@dataclass(frozen=True)
class Outcome:
    """One call's end: a result, or the SQLSTATE and DETAIL it failed with."""

    result: Result | None = None
    sqlstate: str | None = None
    detail: str | None = None

    @property
    def ok(self) -> bool:
        return self.result is not None

    @property
    def code(self) -> str:
        """`ok`; `TB000:<code>` for a broken rule; else the bare SQLSTATE (a deadlock's detail names processes)."""
        if self.ok:
            return "ok"
        return f"{self.sqlstate}:{self.detail}" if self.sqlstate == "TB000" else str(self.sqlstate)


async def outcome(call: Awaitable[Result]) -> Outcome:
    try:
        return Outcome(result=await call)
    except asyncpg.PostgresError as exc:
        return Outcome(sqlstate=exc.sqlstate, detail=getattr(exc, "detail", None))


@pytest.fixture(scope="module")
async def conns(database: str) -> AsyncIterator[list[asyncpg.Connection]]:
    opened = [await app_connect(database) for _ in range(CLIENTS)]
    yield opened
    for conn in opened:
        await conn.close()


@pytest.fixture(scope="module")
async def concurrent(settings: Settings, database: str, admin_token: str) -> AsyncIterator[ServedApi]:
    """The API in this loop: requests gathered together are served together (see concurrent_api)."""
    async with concurrent_api(settings, database, admin_token) as api:
        yield api


@pytest.fixture
async def ledger(conns: list[asyncpg.Connection], database: str) -> Ledger:
    return await Ledger.with_new_admin(conns[0], database)


def on(ledger: Ledger, conns: list[asyncpg.Connection]) -> list[Ledger]:
    """The same acting principal on each of the connections."""
    return [ledger.acting_as(ledger.actor, conn) for conn in conns]


async def assert_verified(owner: asyncpg.Connection, community: Community | str) -> None:
    community_id = uuid.UUID(community) if isinstance(community, str) else community.id
    report = await verify(owner, community_id)
    assert report.ok, "\n".join(f"{name}: {message}" for name, message in report.violations)


async def account_state(ledger: Ledger, account_id: uuid.UUID) -> tuple[int, int, int]:
    row = await ledger.conn.fetchrow(
        "select balance_minutes, held_minutes, version from accounts where id = $1", account_id
    )
    assert row is not None
    return row["balance_minutes"], row["held_minutes"], row["version"]


async def lowest_balance_after(ledger: Ledger, account_id: uuid.UUID) -> int:
    lowest: int = await ledger.conn.fetchval(
        "select min(balance_after_minutes) from postings where account_id = $1", account_id
    )
    return lowest


async def test_concurrent_credits_and_gifts_equal_the_sequential_result(
    ledger: Ledger, conns: list[asyncpg.Connection], owner: asyncpg.Connection
) -> None:
    community = await ledger.community()
    members = [await ledger.member(community) for _ in range(4)]
    hot = await ledger.member(community)
    everyone = [*members, hot]
    funding = 600
    for member in everyone:
        await ledger.credit(member, funding)

    # A fixed plan, so that every operation succeeds in any order: each sender gives away less
    # than it was funded with. Most gifts go to the hot account; it also gives some back.
    rng = random.Random(20261127)
    expected = {m.account_id: funding for m in everyone}
    postings = {m.account_id: 1 for m in everyone}
    outgoing = Counter[uuid.UUID]()
    plans: list[list[tuple[str, Member, Member | None, int]]] = [[] for _ in range(CLIENTS)]
    issued = 0
    for step in range(CLIENTS * 12):
        plan = plans[step % CLIENTS]
        roll = rng.random()
        if roll < 0.3:
            target = rng.choice(everyone)
            minutes = rng.choice([15, 30, 45, 60])
            plan.append(("credit", target, None, minutes))
            expected[target.account_id] += minutes
            postings[target.account_id] += 1
            issued += minutes
            continue
        sender = hot if roll > 0.9 else rng.choice(members)
        recipient = rng.choice([m for m in members if m != sender]) if sender is hot or roll > 0.8 else hot
        if outgoing[sender.account_id] + 15 > funding:
            continue
        outgoing[sender.account_id] += 15
        plan.append(("gift", sender, recipient, 15))
        expected[sender.account_id] -= 15
        expected[recipient.account_id] += 15
        postings[sender.account_id] += 1
        postings[recipient.account_id] += 1

    async def client(worker: Ledger, plan: list[tuple[str, Member, Member | None, int]]) -> list[Outcome]:
        outcomes = []
        for kind, member, recipient, minutes in plan:
            if kind == "credit":
                outcomes.append(await outcome(worker.credit(member, minutes)))
            else:
                assert recipient is not None
                outcomes.append(await outcome(worker.gift(member, recipient, minutes)))
        return outcomes

    results = await asyncio.gather(*(client(w, p) for w, p in zip(on(ledger, conns), plans, strict=True)))
    codes = Counter(o.code for outcomes in results for o in outcomes)
    assert codes == Counter({"ok": sum(len(p) for p in plans)}), codes

    for member in everyone:
        balance, held, version = await account_state(ledger, member.account_id)
        assert (balance, held, version) == (expected[member.account_id], 0, postings[member.account_id])
        assert await lowest_balance_after(ledger, member.account_id) >= 0
    issuance = await account_state(ledger, community.issuance)
    assert issuance[0] == -(funding * len(everyone) + issued)
    await assert_verified(owner, community)


async def test_concurrent_requests_through_the_api_lose_nothing(
    concurrent: ServedApi, settings: Settings, owner: asyncpg.Connection
) -> None:
    api = concurrent
    community = await api.community()
    members = [await api.member(community, "volunteer", "resident") for _ in range(3)]
    hot = await api.member(community, "volunteer", "resident")
    everyone = [*members, hot]
    funding = 240
    for member in everyone:
        response = await api.credit(member, funding)
        assert response.status_code == 201, response.text
    expected = {m.account_id: funding for m in everyone}
    versions = {m.account_id: 1 for m in everyone}

    rng = random.Random(7)
    plans: list[list[tuple[ApiMember, ApiMember | None, int]]] = [[] for _ in range(CLIENTS)]
    given = Counter[str]()
    for step in range(CLIENTS * 5):
        sender: ApiMember = rng.choice(members)
        if step % 3 == 0 or given[sender.account_id] + 15 > funding:
            target = rng.choice(everyone)
            plans[step % CLIENTS].append((target, None, 30))
            expected[target.account_id] += 30
            versions[target.account_id] += 1
        else:
            given[sender.account_id] += 15
            plans[step % CLIENTS].append((sender, hot, 15))
            expected[sender.account_id] -= 15
            expected[hot.account_id] += 15
            versions[sender.account_id] += 1
            versions[hot.account_id] += 1

    async def client(plan: list[tuple[ApiMember, ApiMember | None, int]]) -> list[tuple[int, str]]:
        answers = []
        for member, recipient, minutes in plan:
            if recipient is None:
                response = await api.credit(member, minutes)
            else:
                body = {"from_member_id": member.id, "to_member_id": recipient.id, "minutes": minutes}
                response = await api.post("/v1/transfers", member.token, body)
            code = response.json().get("code", "") if response.status_code >= 400 else ""
            answers.append((response.status_code, code))
        return answers

    answers = await asyncio.gather(*(client(plan) for plan in plans))
    assert api.pool_size() > settings.pool_min_size, "the requests did not run side by side"
    statuses = Counter(status for per_client in answers for status, _ in per_client)
    codes = Counter(code for per_client in answers for _, code in per_client if code)
    assert codes["conflict_retry"] == 0, codes
    assert statuses == Counter({201: sum(len(p) for p in plans)}), (statuses, codes)

    for member in everyone:
        account = await api.account(member.account_id)
        assert (account["balance_minutes"], account["version"]) == (
            expected[member.account_id],
            versions[member.account_id],
        )
    entries = await api.get(f"/v1/accounts/{hot.account_id}/entries", api.admin_token, limit=500)
    assert entries.status_code == 200, entries.text
    items = entries.json()["items"]
    assert len(items) == versions[hot.account_id]
    assert sum(item["minutes"] for item in items) == expected[hot.account_id]
    assert items[0]["balance_after_minutes"] == expected[hot.account_id]
    await assert_verified(owner, community.id)


DEBITS = ["redemption", "gift", "donation", "hold"]


@pytest.mark.parametrize(("overdraft", "winners"), [(0, 8), (60, 12)])
@pytest.mark.parametrize("mix", ["redemption", "mixed"])
async def test_racing_debits_stop_exactly_at_the_floor(
    ledger: Ledger,
    conns: list[asyncpg.Connection],
    owner: asyncpg.Connection,
    overdraft: int,
    winners: int,
    mix: str,
) -> None:
    community = await ledger.community(overdraft_minutes=overdraft)
    member = await ledger.member(community)
    friend = await ledger.member(community)
    await ledger.credit(member, 120)

    def debit(worker: Ledger, index: int) -> Awaitable[Result]:
        kind = "redemption" if mix == "redemption" else DEBITS[index % len(DEBITS)]
        if kind == "redemption":
            return worker.redeem(member, 15)
        if kind == "gift":
            return worker.gift(member, friend, 15)
        if kind == "donation":
            return worker.donate(member, 15)
        return worker.hold(member, 15)

    outcomes = await asyncio.gather(*(outcome(debit(w, i)) for i, w in enumerate(on(ledger, conns))))
    codes = Counter(o.code for o in outcomes)
    assert codes == Counter({"ok": winners, "TB000:insufficient_balance": CLIENTS - winners}), codes
    balance, held, _ = await account_state(ledger, member.account_id)
    assert balance - held == -overdraft
    assert await lowest_balance_after(ledger, member.account_id) >= -overdraft
    await assert_verified(owner, community)


async def test_racing_debits_through_the_api(concurrent: ServedApi, owner: asyncpg.Connection) -> None:
    api = concurrent
    community = await api.community()
    member = await api.member(community, "volunteer", "resident")
    friend = await api.member(community, "volunteer", "resident")
    assert (await api.credit(member, 120)).status_code == 201
    requests = [
        ("/v1/redemptions", {"member_id": member.id, "minutes": 15}),
        ("/v1/transfers", {"from_member_id": member.id, "to_member_id": friend.id, "minutes": 15}),
        ("/v1/transfers", {"from_member_id": member.id, "to_pool": True, "minutes": 15}),
        ("/v1/holds", {"member_id": member.id, "minutes": 15}),
    ]
    responses = await asyncio.gather(
        *(api.post(path, member.token, body) for _ in range(CLIENTS // len(requests)) for path, body in requests)
    )
    answers = Counter((r.status_code, r.json().get("code") if r.status_code >= 400 else None) for r in responses)
    assert answers == Counter({(201, None): 8, (422, "insufficient_balance"): CLIENTS - 8}), answers
    account = await api.account(member.account_id)
    assert account["available_minutes"] == 0
    assert account["balance_minutes"] - account["held_minutes"] == 0
    await assert_verified(owner, community.id)


async def test_racing_pool_grants_never_overdraw_the_pool(
    ledger: Ledger, conns: list[asyncpg.Connection], owner: asyncpg.Connection
) -> None:
    community = await ledger.community()
    donor = await ledger.member(community)
    elders = [await ledger.member(community, "resident") for _ in range(4)]
    await ledger.credit(donor, 60)
    await ledger.donate(donor, 60)
    outcomes = await asyncio.gather(
        *(outcome(w.grant(elders[i % len(elders)], 15)) for i, w in enumerate(on(ledger, conns)))
    )
    codes = Counter(o.code for o in outcomes)
    assert codes == Counter({"ok": 4, "TB000:insufficient_balance": CLIENTS - 4}), codes
    assert await ledger.balance(community.pool) == 0
    assert await lowest_balance_after(ledger, community.pool) >= 0
    await assert_verified(owner, community)


async def test_racing_credits_stop_exactly_at_the_cap(
    ledger: Ledger, conns: list[asyncpg.Connection], owner: asyncpg.Connection
) -> None:
    community = await ledger.community(max_balance_minutes=600)
    member = await ledger.member(community)
    await ledger.credit(member, 540)
    outcomes = await asyncio.gather(*(outcome(w.credit(member, 15)) for w in on(ledger, conns)))
    codes = Counter(o.code for o in outcomes)
    assert codes == Counter({"ok": 4, "TB000:balance_cap_exceeded": CLIENTS - 4}), codes
    assert await ledger.balance(member.account_id) == 600
    await assert_verified(owner, community)


async def test_racing_reversals_reverse_once(
    ledger: Ledger, conns: list[asyncpg.Connection], owner: asyncpg.Connection
) -> None:
    community = await ledger.community()
    member = await ledger.member(community)
    credit = await ledger.credit(member, 60)
    outcomes = await asyncio.gather(*(outcome(w.reverse(credit.body["id"])) for w in on(ledger, conns)))
    codes = Counter(o.code for o in outcomes)
    assert codes == Counter({"ok": 1, "TB000:already_reversed": CLIENTS - 1}), codes
    assert await ledger.balance(member.account_id) == 0
    await assert_verified(owner, community)


async def test_capture_and_release_race_resolves_a_hold_once(
    ledger: Ledger, conns: list[asyncpg.Connection], owner: asyncpg.Connection
) -> None:
    community = await ledger.community()
    member = await ledger.member(community)
    await ledger.credit(member, 60)
    hold = await ledger.hold(member, 45)
    hold_id = hold.body["id"]
    workers = on(ledger, conns)
    calls = [w.capture(hold_id, 30) if i % 2 else w.release(hold_id) for i, w in enumerate(workers)]
    outcomes = await asyncio.gather(*(outcome(c) for c in calls))
    codes = Counter(o.code for o in outcomes)
    assert codes == Counter({"ok": 1, "TB000:hold_not_pending": CLIENTS - 1}), codes
    captured = any(o.ok and o.result is not None and o.result.status_code == 201 for o in outcomes)
    balance, held, _ = await account_state(ledger, member.account_id)
    assert (balance, held) == ((30, 0) if captured else (60, 0))
    await assert_verified(owner, community)


async def test_same_key_at_once_moves_hours_once(
    ledger: Ledger, conns: list[asyncpg.Connection], owner: asyncpg.Connection
) -> None:
    community = await ledger.community()
    member = await ledger.member(community)
    digest = b"\x07" * 32
    outcomes = await asyncio.gather(
        *(outcome(w.credit(member, 60, key="one-key", digest=digest)) for w in on(ledger, conns))
    )
    assert all(o.ok for o in outcomes), Counter(o.code for o in outcomes)
    results = [o.result for o in outcomes if o.result is not None]
    assert sorted(r.replayed for r in results) == [False] + [True] * (CLIENTS - 1)
    assert len({r.body["id"] for r in results}) == 1
    assert all(r.body == results[0].body and r.status_code == 201 for r in results)
    assert await ledger.balance(member.account_id) == 60
    await assert_verified(owner, community)


async def test_same_key_at_once_through_the_api(concurrent: ServedApi) -> None:
    api = concurrent
    community = await api.community()
    member = await api.member(community, "volunteer")
    body = {"member_id": member.id, "minutes": 45, "service_date": "2026-11-01", "description": "served"}
    responses = await asyncio.gather(
        *(api.post("/v1/credits", api.admin_token, body, key="api-one-key") for _ in range(8))
    )
    assert [r.status_code for r in responses] == [201] * 8, [r.text for r in responses]
    assert len({r.json()["id"] for r in responses}) == 1
    fresh = [r for r in responses if r.headers.get("idempotent-replayed") != "true"]
    assert len(fresh) == 1
    assert await api.balance(member.account_id) == 45


async def _members_in_lock_order(ledger: Ledger, community: Community) -> tuple[Member, Member]:
    """Two members, the first with the higher account id (it is locked second when sorted)."""
    first, second = await ledger.member(community), await ledger.member(community)
    return (first, second) if first.account_id > second.account_id else (second, first)


async def _community_with_member_after_services(ledger: Ledger) -> tuple[Community, Member]:
    """A community and a member whose account id sorts after the `services` account's."""
    for _ in range(20):
        community = await ledger.community()
        member = await ledger.member(community)
        if member.account_id > community.services:
            return community, member
    pytest.fail("no account id sorted after services in 20 tries")


async def test_captures_racing_redemptions_do_not_deadlock(
    ledger: Ledger, conns: list[asyncpg.Connection], owner: asyncpg.Connection
) -> None:
    # A hold's member redeems directly while a coordinator captures its holds to `services`:
    # both touch the same two accounts and must lock them in the same order.
    community, member = await _community_with_member_after_services(ledger)
    await ledger.credit(member, 1440)
    holds = [(await ledger.hold(member, 15)).body["id"] for _ in range(RACERS)]
    workers = on(ledger, conns[:RACERS])

    async def client(index: int) -> list[Outcome]:
        worker = workers[index]
        if index % 2 == 0:
            mine = holds[index : index + 2]
            return [await outcome(worker.capture(hold_id, 15)) for hold_id in mine]
        return [await outcome(worker.redeem(member, 15)) for _ in range(2)]

    results = await asyncio.gather(*(client(i) for i in range(RACERS)))
    codes = Counter(o.code for outcomes in results for o in outcomes)
    assert codes == Counter({"ok": RACERS * 2}), f"{codes} (40P01 is a deadlock)"
    assert await ledger.balance(member.account_id) == 1440 - RACERS * 2 * 15
    await assert_verified(owner, community)


async def test_captures_to_a_provider_racing_gifts_do_not_deadlock(
    ledger: Ledger, conns: list[asyncpg.Connection], owner: asyncpg.Connection
) -> None:
    # The holder's account sorts after the provider's; the provider gifts hours to the holder
    # while the holder's holds are captured to the provider.
    community = await ledger.community()
    holder, provider = await _members_in_lock_order(ledger, community)
    await ledger.credit(holder, 1440)
    await ledger.credit(provider, 1440)
    holds = [(await ledger.hold(holder, 15)).body["id"] for _ in range(RACERS)]
    workers = on(ledger, conns[:RACERS])

    async def client(index: int) -> list[Outcome]:
        worker = workers[index]
        if index % 2 == 0:
            mine = holds[index : index + 2]
            return [await outcome(worker.capture(hold_id, 15, provider=provider)) for hold_id in mine]
        return [await outcome(worker.gift(provider, holder, 15)) for _ in range(2)]

    results = await asyncio.gather(*(client(i) for i in range(RACERS)))
    codes = Counter(o.code for outcomes in results for o in outcomes)
    assert codes == Counter({"ok": RACERS * 2}), f"{codes} (40P01 is a deadlock)"
    assert await ledger.balance(holder.account_id) == 1440
    assert await ledger.balance(provider.account_id) == 1440
    await assert_verified(owner, community)
