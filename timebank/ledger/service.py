"""Reads of the ledger: accounts, statements, as-of balances and transactions."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
import msgspec

from timebank.db import Database
from timebank.errors import ForbiddenError, NotFoundError
from timebank.http.context import Principal
from timebank.http.moments import Moment, check_order, resolve_moments
from timebank.ledger.models import Account, Balance, Entry, Transaction

_ACCOUNT = """
    select a.id, c.slug as community, a.community_id, a.kind, a.member_id, a.balance_minutes,
           case when a.held_minutes = 0 then 0 else _held_minutes(a.id) end as held_minutes,
           a.version, a.updated_at, c.overdraft_minutes, c.max_balance_minutes, c.time_zone
      from accounts a join communities c on c.id = a.community_id
     where a.id = $1
"""


def may_read_account(actor: Principal, community_id: uuid.UUID, member_id: uuid.UUID | None) -> bool:
    """Staff and auditors read every account of their community; members read their own."""
    own = member_id is not None and actor.member_id == member_id
    return own or actor.is_staff_of(community_id, "coordinator", "auditor")


async def _visible_account(db: Database, actor: Principal, account_id: uuid.UUID) -> asyncpg.Record:
    row = await db.fetchrow(_ACCOUNT, account_id)
    if row is None or not actor.can_see_community(row["community_id"]):
        raise NotFoundError("no such account")
    if not may_read_account(actor, row["community_id"], row["member_id"]):
        raise ForbiddenError("members may read only their own account")
    return row


async def get_account(db: Database, actor: Principal, account_id: uuid.UUID) -> Account:
    row = await _visible_account(db, actor, account_id)
    kind = row["kind"]
    floor = -row["overdraft_minutes"] if kind == "member" else 0 if kind == "pool" else None
    return Account(
        id=row["id"],
        community=row["community"],
        kind=kind,
        member_id=row["member_id"],
        balance_minutes=row["balance_minutes"],
        held_minutes=row["held_minutes"],
        available_minutes=row["balance_minutes"] - row["held_minutes"],
        floor_minutes=floor,
        cap_minutes=row["max_balance_minutes"] if kind == "member" else None,
        version=row["version"],
        updated_at=row["updated_at"],
    )


async def list_entries(
    db: Database,
    actor: Principal,
    account_id: uuid.UUID,
    before_version: int | None,
    start: Moment | None,
    end: Moment | None,
    limit: int,
) -> tuple[list[Entry], list[asyncpg.Record]]:
    """Newest first, keyset-paged on the account version each posting created.

    One query: the page of postings first, then for those rows only their transaction, the other
    side of two-posting transactions and its member's name.
    """
    account = await _visible_account(db, actor, account_id)
    start_at, end_at = await resolve_moments(db, account["time_zone"], start, end)
    check_order(start_at, end_at)
    # Only the filters the request gives, so that each shape of query gets a plain index range
    # (with `$2 is null or ...` a cached generic plan would scan the whole statement).
    filters = {"p.account_version <": before_version, "p.created_at >=": start_at, "p.created_at <": end_at}
    given = [(condition, value) for condition, value in filters.items() if value is not None]
    where = "".join(f" and {condition} ${i}" for i, (condition, _) in enumerate(given, start=3))
    rows = await db.fetch(
        "with page as materialized ("
        "    select p.id, p.transaction_id, p.minutes, p.balance_after_minutes, p.created_at, p.account_version"
        "      from postings p"
        f"    where p.account_id = $1{where}"
        "     order by p.account_version desc"
        "     limit $2"
        ")"
        " select page.transaction_id, t.kind, page.minutes, page.balance_after_minutes, t.description,"
        "        t.service_date, page.created_at, page.account_version, other.member_id as counterparty_member_id,"
        "        case when other.kind = 'member' then m.display_name else other.kind end as counterparty_name"
        "   from page"
        "   join transactions t on t.id = page.transaction_id"
        "   left join lateral ("
        "        select (array_agg(a.kind))[1] as kind, (array_agg(a.member_id))[1] as member_id"
        "          from postings o join accounts a on a.id = o.account_id"
        "         where o.transaction_id = page.transaction_id and o.id <> page.id"
        "        having count(*) = 1"
        "   ) other on true"
        "   left join members m on m.id = other.member_id"
        "  order by page.account_version desc",
        account_id,
        limit + 1,
        *(value for _, value in given),
    )
    entries = [
        Entry(
            transaction_id=r["transaction_id"],
            kind=r["kind"],
            minutes=r["minutes"],
            balance_after_minutes=r["balance_after_minutes"],
            description=r["description"],
            service_date=r["service_date"],
            counterparty_member_id=r["counterparty_member_id"],
            counterparty_name=r["counterparty_name"],
            created_at=r["created_at"],
        )
        for r in rows[:limit]
    ]
    return entries, rows


async def balance_as_of(db: Database, actor: Principal, account_id: uuid.UUID, as_of: Moment | None) -> Balance:
    """The balance including every entry created at or before `as_of` (default: now).

    Per account, created_at never decreases with the version (it is taken under the account's lock),
    so the running balance of the last entry at or before `as_of` is exactly that sum.
    """
    account = await _visible_account(db, actor, account_id)
    (moment,) = await resolve_moments(db, account["time_zone"], as_of)
    moment = moment or datetime.now().astimezone()
    balance = await db.fetchval(
        """
        select coalesce((select balance_after_minutes from postings
                          where account_id = $1 and created_at <= $2
                          order by created_at desc, account_version desc limit 1), 0)
        """,
        account_id,
        moment,
    )
    return Balance(account_id=account_id, balance_minutes=balance, as_of=moment)


async def get_transaction(db: Database, actor: Principal, transaction_id: uuid.UUID) -> Transaction:
    """A transaction, for staff and auditors of its community and for members it touches."""
    row = await db.fetchrow(
        """
        select t.community_id, _transaction_json(t.id)::text as body,
               exists (select 1 from postings p join accounts a on a.id = p.account_id
                        where p.transaction_id = t.id and a.member_id = $2) as touches_caller
          from transactions t where t.id = $1
        """,
        transaction_id,
        actor.member_id,
    )
    if row is None or not actor.can_see_community(row["community_id"]):
        raise NotFoundError("no such transaction")
    if not (row["touches_caller"] or actor.is_staff_of(row["community_id"], "coordinator", "auditor")):
        raise ForbiddenError("members may read only transactions on their own account")
    return msgspec.json.decode(row["body"], type=Transaction)


async def list_transactions(
    db: Database,
    community_id: uuid.UUID,
    kind: str | None,
    before_seq: int | None,
    start: datetime | None,
    end: datetime | None,
    limit: int,
) -> tuple[list[Transaction], list[asyncpg.Record]]:
    """A community's transactions, newest first, keyset-paged on their sequence number."""
    rows = await db.fetch(
        """
        select t.seq, _transaction_json(t.id)::text as body
          from transactions t
         where t.community_id = $1
           and ($2::text is null or t.kind = $2)
           and ($3::bigint is null or t.seq < $3)
           and ($4::timestamptz is null or t.created_at >= $4)
           and ($5::timestamptz is null or t.created_at < $5)
         order by t.seq desc
         limit $6
        """,
        community_id,
        kind,
        before_seq,
        start,
        end,
        limit + 1,
    )
    return [msgspec.json.decode(r["body"], type=Transaction) for r in rows[:limit]], rows
