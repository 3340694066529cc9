"""post_credits: many credits in one statement, exactly as post_credit would post them one by one.

The batch operation posts only the credits that certainly succeed and leaves out every other (no
answer, nothing written) for the single operation to refuse or replay. These tests call it as the
service role does and compare what it wrote with what post_credit writes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
import pytest

from tests.eventually import eventually
from tests.sql.support import SERVICE_DATE, Ledger, app_connect, request_hash
from timebank.ledger.batch import BATCHED
from timebank.ledger.verify import verify

Call = tuple[uuid.UUID, uuid.UUID, int, str]  # actor, member, minutes, key


async def post_credits(
    conn: asyncpg.Connection, calls: Sequence[Call], dates: Sequence[dt.date] | None = None
) -> dict[int, dict[str, Any]]:
    """Answers by 1-based position: only the credits the batch posted."""
    rows = await conn.fetch(
        BATCHED["post_credit"].query(),
        [actor for actor, _, _, _ in calls],
        ["batch-test"] * len(calls),
        [key for _, _, _, key in calls],
        [request_hash("post_credit", member, minutes) for _, member, minutes, _ in calls],
        [member for _, member, _, _ in calls],
        [minutes for _, _, minutes, _ in calls],
        list(dates) if dates is not None else [SERVICE_DATE] * len(calls),
        ["served"] * len(calls),
    )
    assert all(row["status_code"] == 201 for row in rows)
    return {row["n"]: json.loads(row["body"]) for row in rows}


def key() -> str:
    return uuid.uuid4().hex


async def test_a_batch_writes_what_the_single_operation_writes(
    ledger: Ledger, conn: asyncpg.Connection, owner: asyncpg.Connection
) -> None:
    community = await ledger.community()
    anna, ben = await ledger.member(community, "volunteer"), await ledger.member(community, "volunteer")
    # One credit alone, for comparison.
    single = (await ledger.credit(anna, 30)).body

    calls = [(ledger.actor, anna.id, 60, key()), (ledger.actor, ben.id, 15, key()), (ledger.actor, anna.id, 45, key())]
    answers = await post_credits(conn, calls)
    assert sorted(answers) == [1, 2, 3]

    # The answer is the stored transaction, shaped like the single operation's.
    accounts = {anna.id: anna.account_id, ben.id: ben.account_id}
    for n, body in answers.items():
        _, member, minutes, _ = calls[n - 1]
        stored = json.loads(await conn.fetchval("select _transaction_json($1)::text", uuid.UUID(body["id"])))
        assert body == stored
        assert body.keys() == single.keys()
        assert body["postings"] == [
            {"account_id": str(community.issuance), "minutes": -minutes},
            {"account_id": str(accounts[member]), "minutes": minutes},
        ]

    # Running balances and versions follow the batch order on every account, issuance included.
    entries = await conn.fetch(
        "select minutes, balance_after_minutes, account_version from postings where account_id = $1"
        " order by account_version",
        anna.account_id,
    )
    assert [tuple(r) for r in entries] == [(30, 30, 1), (60, 90, 2), (45, 135, 3)]
    assert await ledger.balance(anna.account_id) == 135
    assert await ledger.balance(ben.account_id) == 15
    assert await ledger.balance(community.issuance) == -150
    issuance = await conn.fetch(
        "select balance_after_minutes from postings where account_id = $1 order by account_version",
        community.issuance,
    )
    assert [r[0] for r in issuance] == [-30, -90, -105, -150]

    # One audit event and one idempotency record per credit; a retry of a batched key replays.
    for n, (_, member, minutes, used_key) in enumerate(calls, start=1):
        details = await conn.fetchval(
            "select details::text from audit_events where subject_id = $1 and action = 'transaction.created'",
            uuid.UUID(answers[n]["id"]),
        )
        assert json.loads(details) == {
            "member_id": str(member),
            "minutes": minutes,
            "kind": "credit",
            "postings": answers[n]["postings"],
        }
        replay = await ledger.call("post_credit", member, minutes, SERVICE_DATE, "served", key=used_key,
                                   digest=request_hash("post_credit", member, minutes))  # fmt: skip
        assert replay.replayed
        assert (replay.status_code, replay.body) == (201, answers[n])

    report = await verify(owner, community.id)
    assert report.ok, report.violations


async def test_credits_that_might_fail_are_left_to_the_single_operation(
    ledger: Ledger, conn: asyncpg.Connection, owner: asyncpg.Connection
) -> None:
    community = await ledger.community(unit_minutes=15, max_transaction_minutes=600, max_balance_minutes=120)
    other = await ledger.community()
    volunteer = await ledger.member(community, "volunteer")
    capped = await ledger.member(community, "volunteer")
    resident = await ledger.member(community, "resident")
    coordinator = await ledger.member(community, "coordinator")
    stranger = await ledger.member(other, "coordinator")
    used = key()
    await ledger.credit(volunteer, 15, key=used)
    count = "select (select count(*) from transactions), (select count(*) from audit_events)"
    before = tuple(await conn.fetchrow(count))

    calls: list[Call] = [
        (ledger.actor, volunteer.id, 15, key()),  # 1 posted
        (ledger.actor, uuid.uuid4(), 15, key()),  # 2 no such member
        (ledger.actor, resident.id, 15, key()),  # 3 not a volunteer
        (ledger.actor, volunteer.id, 20, key()),  # 4 not a multiple of the unit
        (ledger.actor, volunteer.id, 0, key()),  # 5 not positive
        (ledger.actor, volunteer.id, 615, key()),  # 6 above the transaction maximum
        (stranger.principal_id, volunteer.id, 15, key()),  # 7 another community's coordinator
        (volunteer.principal_id, volunteer.id, 15, key()),  # 8 a volunteer crediting itself
        (ledger.actor, volunteer.id, 15, used),  # 9 a key used before
        (uuid.uuid4(), volunteer.id, 15, key()),  # 10 unknown principal
        (coordinator.principal_id, volunteer.id, 30, "twice"),  # 11 posted: first use of the key
        (coordinator.principal_id, volunteer.id, 30, "twice"),  # 12 the same key again in the batch
        (ledger.actor, capped.id, 90, key()),  # 13 within the cap alone ...
        (ledger.actor, capped.id, 45, key()),  # 14 ... but not with this: the capped member is left out whole
    ]
    answers = await post_credits(conn, calls)
    assert sorted(answers) == [1, 11]
    # Two transactions and their two audit events; nothing at all for the credits left out.
    assert tuple(await conn.fetchrow(count)) == (before[0] + 2, before[1] + 2)
    assert await ledger.balance(volunteer.account_id) == 15 + 15 + 30
    assert await ledger.balance(capped.account_id) == 0
    report = await verify(owner, community.id)
    assert report.ok, report.violations


async def test_a_batch_leaves_out_service_dates_after_today_in_the_community(
    ledger: Ledger, conn: asyncpg.Connection
) -> None:
    """post_credit refuses a service date after today where the community is; so never does the batch."""
    far_east = await ledger.community(time_zone="Pacific/Kiritimati")
    far_west = await ledger.community(time_zone="Pacific/Pago_Pago")
    east, west = await ledger.member(far_east, "volunteer"), await ledger.member(far_west, "volunteer")
    # 25 hours apart: Kiritimati's today is always after Pago Pago's.
    east_today = await conn.fetchval("select (now() at time zone 'Pacific/Kiritimati')::date")
    calls = [(ledger.actor, east.id, 15, key()), (ledger.actor, west.id, 15, key()), (ledger.actor, east.id, 15, key())]
    dates = [east_today, east_today, east_today + dt.timedelta(days=1)]
    answers = await post_credits(conn, calls, dates)
    assert sorted(answers) == [1]
    assert answers[1]["service_date"] == east_today.isoformat()
    # Left out, each goes through the single operation, which refuses it.
    for (_, member, minutes, used), day in zip(calls[1:], dates[1:], strict=True):
        with pytest.raises(asyncpg.PostgresError) as caught:
            await ledger.call("post_credit", member, minutes, day, "served", key=used)
        assert getattr(caught.value, "detail", None) == "service_date_in_future"
    assert await ledger.balance(east.account_id) == 15
    assert await ledger.balance(west.account_id) == 0


async def test_nothing_to_post_answers_nothing(ledger: Ledger, conn: asyncpg.Connection) -> None:
    assert await post_credits(conn, [(ledger.actor, uuid.uuid4(), 15, key())]) == {}
    assert await post_credits(conn, []) == {}


Gift = tuple[uuid.UUID, uuid.UUID, uuid.UUID, int, str]  # actor, sender, recipient, minutes, key


async def post_transfers(conn: asyncpg.Connection, calls: Sequence[Gift], to_pool: bool = False) -> dict[int, Any]:
    rows = await conn.fetch(
        BATCHED["post_transfer"].query(),
        [actor for actor, *_ in calls],
        ["batch-test"] * len(calls),
        [key for *_, key in calls],
        [request_hash("post_transfer", sender, recipient, minutes) for _, sender, recipient, minutes, _ in calls],
        [sender for _, sender, _, _, _ in calls],
        [recipient for _, _, recipient, _, _ in calls],
        [to_pool] * len(calls),
        [minutes for _, _, _, minutes, _ in calls],
        ["gift"] * len(calls),
    )
    assert all(row["status_code"] == 201 for row in rows)
    return {row["n"]: json.loads(row["body"]) for row in rows}


async def test_a_batch_of_gifts_writes_what_the_single_operation_writes(
    ledger: Ledger, conn: asyncpg.Connection, owner: asyncpg.Connection
) -> None:
    community = await ledger.community(overdraft_minutes=0)
    anna, ben, chen = [await ledger.member(community, "volunteer") for _ in range(3)]
    await ledger.credit(anna, 300)
    single = (await ledger.acting_as(anna.principal_id).gift(anna, chen, 15)).body

    calls: list[Gift] = [
        (anna.principal_id, anna.id, ben.id, 60, key()),  # her own gift: on no one's behalf
        (ben.principal_id, ben.id, anna.id, 15, key()),  # ben gives on from what he just got
        (ledger.actor, anna.id, chen.id, 30, key()),  # an admin acting for anna
    ]
    answers = await post_transfers(conn, calls)
    assert sorted(answers) == [1, 2, 3]
    for n, body in answers.items():
        stored = json.loads(await conn.fetchval("select _transaction_json($1)::text", uuid.UUID(body["id"])))
        assert body == stored
        assert body.keys() == single.keys()
        assert body["kind"] == "transfer"
        event = await conn.fetchrow(
            "select on_behalf_of, details::text as details from audit_events"
            " where subject_id = $1 and action = 'transaction.created'",
            uuid.UUID(body["id"]),
        )
        _, sender, recipient, minutes, _ = calls[n - 1]
        assert json.loads(event["details"]) == {
            "from_member_id": str(sender),
            "to_member_id": str(recipient),
            "to_pool": False,
            "minutes": minutes,
            "kind": "transfer",
            "postings": body["postings"],
        }
        assert event["on_behalf_of"] == (None if body["on_behalf_of"] is None else uuid.UUID(body["on_behalf_of"]))
    assert answers[1]["on_behalf_of"] is None
    assert answers[3]["on_behalf_of"] == str(anna.id)
    assert (await ledger.balance(anna.account_id), await ledger.balance(ben.account_id)) == (
        300 - 15 - 60 + 15 - 30,
        45,
    )
    assert await ledger.balance(chen.account_id) == 45
    report = await verify(owner, community.id)
    assert report.ok, report.violations


async def test_gifts_that_might_fail_are_left_to_the_single_operation(
    ledger: Ledger, conn: asyncpg.Connection, owner: asyncpg.Connection
) -> None:
    community = await ledger.community(overdraft_minutes=0, max_balance_minutes=600)
    other = await ledger.community()
    anna, ben, chen, dora, eve, full = [await ledger.member(community, "volunteer") for _ in range(6)]
    stranger = await ledger.member(other, "volunteer")
    await ledger.credit(anna, 30)
    await ledger.credit(chen, 60)
    await ledger.credit(full, 600)
    await ledger.credit(dora, 60)
    await ledger.hold(dora, 45)  # dora has 15 minutes free
    before = await conn.fetchval("select count(*) from transactions")

    calls: list[Gift] = [
        (anna.principal_id, anna.id, ben.id, 30, key()),  # 1 fine alone, but anna then overdraws ...
        (anna.principal_id, anna.id, ben.id, 15, key()),  # 2 ... here: both of anna's are left out,
        (ben.principal_id, ben.id, eve.id, 15, key()),  # 3 and ben had only what anna gave him
        (chen.principal_id, chen.id, eve.id, 15, key()),  # 4 posted
        (chen.principal_id, chen.id, chen.id, 15, key()),  # 5 to itself
        (chen.principal_id, chen.id, stranger.id, 15, key()),  # 6 to another community
        (ben.principal_id, chen.id, dora.id, 15, key()),  # 7 a member giving another's hours
        (chen.principal_id, chen.id, full.id, 15, key()),  # 8 the recipient is at its cap
        (dora.principal_id, dora.id, eve.id, 30, key()),  # 9 more than dora's unheld minutes
        (chen.principal_id, chen.id, dora.id, 20, key()),  # 10 not a multiple of the unit
    ]
    answers = await post_transfers(conn, calls)
    assert sorted(answers) == [4]
    assert await conn.fetchval("select count(*) from transactions") == before + 1
    # The keys of the gifts left out were claimed, then given back: nothing is stored for them.
    stored = await owner.fetchval(
        "select count(*) from idempotency_keys where key = any($1::text[])", [k for *_, k in calls]
    )
    assert stored == 1
    assert await ledger.balance(anna.account_id) == 30
    assert await ledger.balance(ben.account_id) == 0
    # Donations are not batched: the single operation posts them.
    assert await post_transfers(conn, [(chen.principal_id, chen.id, dora.id, 15, key())], to_pool=True) == {}
    report = await verify(owner, community.id)
    assert report.ok, report.violations


async def test_the_same_key_twice_in_one_batch_posts_the_first_only(ledger: Ledger, conn: asyncpg.Connection) -> None:
    community = await ledger.community()
    anna = await ledger.member(community, "volunteer")
    twice = key()
    answers = await post_credits(conn, [(ledger.actor, anna.id, 15, twice), (ledger.actor, anna.id, 30, twice)])
    assert sorted(answers) == [1]
    assert await ledger.balance(anna.account_id) == 15


async def waits_for_a_lock(observer: asyncpg.Connection, conn: asyncpg.Connection) -> None:
    """Wait (bounded) until `conn`'s session waits for a lock another session holds."""
    await eventually(
        lambda: observer.fetchval(
            "select exists (select 1 from pg_locks where pid = $1 and not granted)", conn.get_server_pid()
        ),
        what=f"session {conn.get_server_pid()} waiting for a lock",
    )


async def test_a_batch_and_a_single_operation_with_one_key_do_not_deadlock(
    ledger: Ledger, database: str, owner: asyncpg.Connection
) -> None:
    # The single operation claims its key, then locks accounts; the batch must take the same order,
    # or each would wait for the other (PostgreSQL breaks the cycle after deadlock_timeout with 40P01).
    community = await ledger.community()
    anna = await ledger.member(community, "volunteer")
    shared = key()
    batch_conn, single_conn = await app_connect(database), await app_connect(database)
    try:
        async with owner.transaction():
            await owner.execute(
                "select 1 from accounts where id = any($1::uuid[]) order by id for update",
                [community.issuance, anna.account_id],
            )
            batch = asyncio.create_task(post_credits(batch_conn, [(ledger.actor, anna.id, 15, shared)]))
            await waits_for_a_lock(owner, batch_conn)  # the batch holds its key and waits for the accounts
            same = request_hash("post_credit", anna.id, 15)
            single = asyncio.create_task(
                ledger.acting_as(ledger.actor, single_conn).credit(anna, 15, key=shared, digest=same)
            )
            await waits_for_a_lock(owner, single_conn)  # the single operation waits for the key
        answers, replay = await asyncio.gather(batch, single)
    finally:
        await batch_conn.close()
        await single_conn.close()
    assert sorted(answers) == [1]
    assert replay.replayed
    assert replay.body == answers[1]
    assert await ledger.balance(anna.account_id) == 15


Redemption = tuple[uuid.UUID, uuid.UUID, uuid.UUID | None, int, str]  # actor, member, provider, minutes, key


async def post_redemptions(conn: asyncpg.Connection, calls: Sequence[Redemption]) -> dict[int, Any]:
    rows = await conn.fetch(
        BATCHED["post_redemption"].query(),
        [actor for actor, *_ in calls],
        ["batch-test"] * len(calls),
        [key for *_, key in calls],
        [request_hash("post_redemption", member, provider, minutes) for _, member, provider, minutes, _ in calls],
        [member for _, member, _, _, _ in calls],
        [minutes for _, _, _, minutes, _ in calls],
        ["meal"] * len(calls),
        [provider for _, _, provider, _, _ in calls],
    )
    assert all(row["status_code"] == 201 for row in rows)
    return {row["n"]: json.loads(row["body"]) for row in rows}


async def test_a_batch_of_redemptions_writes_what_the_single_operation_writes(
    ledger: Ledger, conn: asyncpg.Connection, owner: asyncpg.Connection
) -> None:
    community = await ledger.community()
    resident = await ledger.member(community, "resident")
    provider = await ledger.member(community, "volunteer")
    giver = await ledger.member(community, "volunteer")
    await ledger.credit(giver, 300)
    await ledger.gift(giver, resident, 300)
    single = (await ledger.acting_as(resident.principal_id).redeem(resident, 15)).body

    calls: list[Redemption] = [
        (resident.principal_id, resident.id, None, 60, key()),  # its own, to the services account
        (ledger.actor, resident.id, provider.id, 30, key()),  # an admin for it, to a provider
    ]
    answers = await post_redemptions(conn, calls)
    assert sorted(answers) == [1, 2]
    for n, body in answers.items():
        stored = json.loads(await conn.fetchval("select _transaction_json($1)::text", uuid.UUID(body["id"])))
        assert body == stored
        assert body.keys() == single.keys()
        assert body["kind"] == "redemption"
        event = await conn.fetchrow(
            "select on_behalf_of, details::text as details from audit_events"
            " where subject_id = $1 and action = 'transaction.created'",
            uuid.UUID(body["id"]),
        )
        _, member, named, minutes, _ = calls[n - 1]
        assert json.loads(event["details"]) == {
            "member_id": str(member),
            "minutes": minutes,
            "provider_member_id": None if named is None else str(named),
            "kind": "redemption",
            "postings": body["postings"],
        }
        assert event["on_behalf_of"] == (None if body["on_behalf_of"] is None else uuid.UUID(body["on_behalf_of"]))
    assert answers[1]["postings"][1]["account_id"] == str(community.services)
    assert answers[2]["postings"][1]["account_id"] == str(provider.account_id)
    assert answers[1]["on_behalf_of"] is None
    assert answers[2]["on_behalf_of"] == str(resident.id)
    assert await ledger.balance(resident.account_id) == 300 - 15 - 60 - 30
    assert await ledger.balance(provider.account_id) == 30
    report = await verify(owner, community.id)
    assert report.ok, report.violations


async def test_redemptions_that_might_fail_are_left_to_the_single_operation(
    ledger: Ledger, conn: asyncpg.Connection, owner: asyncpg.Connection
) -> None:
    community = await ledger.community(overdraft_minutes=0, max_balance_minutes=600)
    other = await ledger.community()
    resident = await ledger.member(community, "resident")
    volunteer = await ledger.member(community, "volunteer")
    full = await ledger.member(community, "volunteer")
    stranger = await ledger.member(other, "volunteer")
    await ledger.credit(volunteer, 90)
    await ledger.credit(full, 600)
    await ledger.gift(volunteer, resident, 60)

    calls: list[Redemption] = [
        (resident.principal_id, resident.id, None, 30, key()),  # 1 posted
        (volunteer.principal_id, volunteer.id, None, 15, key()),  # 2 a volunteer (not a resident) for itself
        (resident.principal_id, resident.id, resident.id, 15, key()),  # 3 with itself
        (resident.principal_id, resident.id, stranger.id, 15, key()),  # 4 a provider of another community
        (resident.principal_id, resident.id, uuid.uuid4(), 15, key()),  # 5 no such provider
        (resident.principal_id, resident.id, full.id, 15, key()),  # 6 the provider is at its cap
        (resident.principal_id, resident.id, None, 20, key()),  # 7 not a multiple of the unit
        (volunteer.principal_id, resident.id, None, 15, key()),  # 8 another member acting for it
    ]
    answers = await post_redemptions(conn, calls)
    assert sorted(answers) == [1]
    assert await ledger.balance(resident.account_id) == 30
    # More than its balance: the resident is left out whole (both of its redemptions).
    more: list[Redemption] = [
        (resident.principal_id, resident.id, None, 15, key()),
        (resident.principal_id, resident.id, None, 30, key()),
    ]
    assert await post_redemptions(conn, more) == {}
    stored = await owner.fetchval(
        "select count(*) from idempotency_keys where key = any($1::text[])", [k for *_, k in [*calls, *more]]
    )
    assert stored == 1
    report = await verify(owner, community.id)
    assert report.ok, report.violations
