"""`timebank verify` on what people added: member numbers, relatives and credit batches, each
tampering a superuser could plant behind the service's back named."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import asyncpg
import pytest

from tests.cli.test_verify import run_verify, violations
from tests.sql.support import Community, Ledger, Member, app_connect, owner_connect, request_hash
from timebank.ledger.verify import verify


@dataclass
class People:
    url: str
    owner: asyncpg.Connection
    community: Community
    members: list[Member]
    batch_id: uuid.UUID


@pytest.fixture
async def people(fresh_db: str) -> AsyncIterator[People]:
    app = await app_connect(fresh_db)
    owner = await owner_connect(fresh_db)
    try:
        ledger = await Ledger.with_new_admin(app, fresh_db)
        community = await ledger.community(slug="people")
        members = [await ledger.member(community, "volunteer", "resident") for _ in range(4)]
        for member, relative, relation in ((members[0], members[1], "parent"), (members[2], members[3], "spouse")):
            await app.fetchrow(
                "select * from add_relative($1, 'test', $2, $3, $4, $5, $6)",
                ledger.actor, uuid.uuid4().hex, request_hash("rel", member.id), member.id, relative.id, relation,
            )  # fmt: skip
        row = await app.fetchrow(
            "select body::text from post_credit_batch($1, 'test', $2, $3, 'people', $4, '活动', $5, $6)",
            ledger.actor,
            uuid.uuid4().hex,
            request_hash("batch"),
            dt.date(2026, 11, 1),
            [m.id for m in members],
            [15, 30, 45, 60],
        )
        assert row is not None
        batch_id = uuid.UUID(json.loads(row[0])["id"])
        yield People(fresh_db, owner, community, members, batch_id)
    finally:
        await app.close()
        await owner.close()


async def _member_numbers_swapped(p: People) -> str:
    first = p.members[0].id  # numbered after the members registered after it
    async with p.owner.transaction():
        await p.owner.execute("alter table members disable trigger members_member_no_fixed")
        await p.owner.execute("update members set member_no = '900001' where id = $1", first)
        await p.owner.execute("alter table members enable trigger members_member_no_fixed")
    return "member_numbers_in_order"


async def _member_number_garbled(p: People) -> str:
    async with p.owner.transaction():
        await p.owner.execute("alter table members disable trigger members_member_no_fixed")
        await p.owner.execute("alter table members drop constraint members_member_no_format")
        await p.owner.execute("update members set member_no = 'A00003' where id = $1", p.members[2].id)
        await p.owner.execute("alter table members enable trigger members_member_no_fixed")
    return "member_numbers_in_order"


async def _one_side_of_a_link_deleted(p: People) -> str:
    await p.owner.execute(
        "delete from relatives where member_id = $1 and relative_member_id = $2", p.members[1].id, p.members[0].id
    )
    return "relatives_symmetric"


async def _one_side_of_a_link_changed(p: People) -> str:
    await p.owner.execute(
        "update relatives set relation = 'sibling' where member_id = $1 and relative_member_id = $2",
        p.members[3].id,
        p.members[2].id,
    )
    return "relatives_symmetric"


async def _batch_total_changed(p: People) -> str:
    async with p.owner.transaction():
        await p.owner.execute("alter table credit_batches disable trigger credit_batches_append_only")
        await p.owner.execute("update credit_batches set total_minutes = 300 where id = $1", p.batch_id)
        await p.owner.execute("alter table credit_batches enable trigger credit_batches_append_only")
    return "credit_batches_consistent"


async def _batch_given_a_stranger(p: People) -> str:
    stranger = await p.owner.fetchval(
        "select id from transactions where community_id = $1 and id not in"
        " (select transaction_id from credit_batch_transactions) limit 1",
        p.community.id,
    )
    if stranger is None:  # every transaction is the batch's: move one out of it instead
        async with p.owner.transaction():
            await p.owner.execute(
                "alter table credit_batch_transactions disable trigger credit_batch_transactions_append_only"
            )
            await p.owner.execute(
                "delete from credit_batch_transactions where credit_batch_id = $1 and position = 2", p.batch_id
            )
            await p.owner.execute(
                "alter table credit_batch_transactions enable trigger credit_batch_transactions_append_only"
            )
    return "credit_batches_consistent"


TAMPERINGS: dict[str, Callable[[People], Awaitable[str]]] = {
    "member_numbers_swapped": _member_numbers_swapped,
    "member_number_garbled": _member_number_garbled,
    "one_side_of_a_link_deleted": _one_side_of_a_link_deleted,
    "one_side_of_a_link_changed": _one_side_of_a_link_changed,
    "batch_total_changed": _batch_total_changed,
    "batch_item_removed": _batch_given_a_stranger,
}


async def test_verify_passes_on_healthy_people(people: People) -> None:
    report = await verify(people.owner)
    assert report.ok, report.violations
    for name in ("member_numbers_in_order", "relatives_symmetric", "credit_batches_consistent"):
        assert name in report.checked
    code, out, err = await run_verify(people.url, "--community", "people")
    assert code == 0, out + err


@pytest.mark.parametrize("tampering", TAMPERINGS)
async def test_verify_names_what_was_planted(people: People, tampering: str) -> None:
    check = await TAMPERINGS[tampering](people)
    report = await verify(people.owner)
    assert {name for name, _ in report.violations} == {check}, report.violations
    code, out, _ = await run_verify(people.url)
    assert code == 1
    assert any(line.startswith(f"VIOLATION {check}") for line in violations(out)), out
