"""Workload g's long history, written by SQL in one database transaction.

Posting a million entries through the operations one by one takes about 25 minutes here; the rows
they write are simple to state, so this writes the same rows set-based (generate_series and window
functions) in one transaction, as the database owner, in about a minute:

- one `transactions` row per movement, of the everyday kinds in a fixed cycle per member
  (credit, credit, a gift to the next member, its gift back, a donation to the pool, a pool grant,
  two redemptions: 8 transactions of 15 minutes, 16 entries, ending where it began, never below a
  floor), by the community's coordinator, on behalf of the member whose hours move (as the
  operations record a coordinator acting for a member), with the descriptions, service dates
  (credits: the day in the community's time zone) and request id the operations would give;
- two `postings` each, with each account's running balance and version (1, 2, 3, ...), in time order;
- the accounts' stored balance and version, the sums and counts of their postings;
- one `transaction.created` audit event per transaction with the details the operation records
  (its fields, kind and postings) and the SHA-256 of its content (`_audit_event_digest`).

The moments are spread evenly over [start, end), in transaction order. The constraint triggers
that check each transaction as it commits run once per row (1,500,000 of them here: over ten
minutes on a busy 2-core machine), so this transaction turns triggers off for itself
(`session_replication_role = replica`, seeding only) and checks the same set-based before it
commits: every seeded transaction has two postings in its community that sum to zero, in whole
units. What is not written: Idempotency-Keys (the operations keep each answer for retries;
nothing reads them back here). `timebank verify` finds the result sound (tests/bench/test_history.py).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg

UNIT = 15
CYCLE = 8  # transactions in one member's cycle

CREATE = """
create temporary table seed_history (
    i bigint, tx uuid, event_id uuid, at timestamptz, community_id uuid, actor uuid, request_id text, kind text,
    description text, service_date date, from_account uuid, to_account uuid, on_behalf_of uuid, details jsonb
) on commit drop
"""

HISTORY = """
insert into seed_history
with params as (
    select $1::uuid as community_id, $2::uuid as actor, $3::text as request_id, $5::timestamptz as start_at,
           $6::timestamptz as end_at, $7::uuid[] as members, $8::uuid[] as accounts, $9::uuid as issuance,
           $10::uuid as pool, $11::uuid as services, $12::text as zone, $4::bigint as total
),
steps as (
    select g.i, g.i % 8 as k, (g.i / 8) % cardinality(p.members) + 1 as m,
           ((g.i / 8) + 1) % cardinality(p.members) + 1 as m2,
           p.start_at + ((g.i + 0.5) / p.total) * (p.end_at - p.start_at) as at, p.*
      from params p, generate_series(0, p.total - 1) as g(i)
)
select s.i, gen_random_uuid() as tx, gen_random_uuid() as event_id, s.at, s.community_id, s.actor, s.request_id,
       case when s.k in (0, 1) then 'credit' when s.k in (2, 3) then 'transfer' when s.k = 4 then 'donation'
            when s.k = 5 then 'pool_grant' else 'redemption' end as kind,
       case when s.k in (0, 1) then '服务' when s.k in (2, 3) then '赠与' when s.k = 4 then '捐赠'
            when s.k = 5 then '资助' else '助餐' end as description,
       case when s.k in (0, 1) then (s.at at time zone s.zone)::date end as service_date,
       case when s.k in (0, 1) then s.issuance when s.k = 3 then s.accounts[s.m2] when s.k = 5 then s.pool
            else s.accounts[s.m] end as from_account,
       case when s.k in (0, 1, 3, 5) then s.accounts[s.m] when s.k = 2 then s.accounts[s.m2] when s.k = 4 then s.pool
            else s.services end as to_account,
       case when s.k in (2, 4, 6, 7) then s.members[s.m] when s.k = 3 then s.members[s.m2] end as on_behalf_of,
       case when s.k in (0, 1, 5) then jsonb_build_object('member_id', s.members[s.m], 'minutes', 15)
            when s.k = 2 then jsonb_build_object('from_member_id', s.members[s.m], 'to_member_id', s.members[s.m2],
                                                 'to_pool', false, 'minutes', 15)
            when s.k = 3 then jsonb_build_object('from_member_id', s.members[s.m2], 'to_member_id', s.members[s.m],
                                                 'to_pool', false, 'minutes', 15)
            when s.k = 4 then jsonb_build_object('from_member_id', s.members[s.m], 'to_member_id', null,
                                                 'to_pool', true, 'minutes', 15)
            else jsonb_build_object('member_id', s.members[s.m], 'minutes', 15, 'provider_member_id', null)
       end as details
  from steps s
"""

LEGS = """
create temporary table seed_legs on commit drop as
select h.i, l.leg, h.tx, l.account_id, l.minutes, h.at,
       sum(l.minutes) over w + coalesce(a.balance_minutes, 0) as balance_after,
       row_number() over w + coalesce(a.version, 0) as version
  from seed_history h
 cross join lateral (values (1, h.from_account, -15::bigint), (2, h.to_account, 15::bigint))
       as l(leg, account_id, minutes)
  join accounts a on a.id = l.account_id
window w as (partition by l.account_id order by h.i, l.leg rows unbounded preceding)
"""

WRITE = (
    """
    insert into transactions (id, community_id, kind, description, service_date, created_at, created_by,
                              on_behalf_of, reverses, hold_id, request_id)
    select tx, community_id, kind, description, service_date, at, actor, on_behalf_of, null, null, request_id
      from seed_history order by i
    """,
    """
    insert into postings (transaction_id, account_id, minutes, balance_after_minutes, account_version, created_at)
    select tx, account_id, minutes, balance_after, version, at from seed_legs order by i, leg
    """,
    """
    update accounts a set balance_minutes = f.balance_after, version = f.version, updated_at = f.at
      from (select distinct on (account_id) account_id, balance_after, version, at
              from seed_legs order by account_id, i desc, leg desc) f
     where a.id = f.account_id
    """,
    """
    insert into audit_events (id, at, actor, on_behalf_of, action, subject_type, subject_id, community_id,
                              request_id, details, content_hash)
    select h.event_id, h.at, h.actor::text, h.on_behalf_of, 'transaction.created', 'transaction', h.tx,
           h.community_id, h.request_id, d.details,
           _audit_event_digest(h.event_id, h.at, h.actor::text, h.on_behalf_of, 'transaction.created',
                               'transaction', h.tx, h.community_id, h.request_id, d.details)
      from seed_history h
     cross join lateral (select h.details || jsonb_build_object('kind', h.kind, 'postings', jsonb_build_array(
                                    jsonb_build_object('account_id', h.from_account, 'minutes', -15),
                                    jsonb_build_object('account_id', h.to_account, 'minutes', 15))) as details) d
     order by h.i
    """,
)


# What the constraint triggers check at commit, for every seeded transaction at once.
BALANCED = """
select count(*) from (
    select h.tx
      from seed_history h
      left join postings p on p.transaction_id = h.tx
      left join accounts a on a.id = p.account_id
     group by h.tx
    having count(p.id) <> 2 or sum(p.minutes) <> 0 or bool_or(a.community_id is distinct from $1)
        or bool_or(p.minutes % $2 <> 0)
) bad
"""


@dataclass(frozen=True)
class HistoryPlan:
    community_id: uuid.UUID
    actor: uuid.UUID  # the coordinator's principal
    request_id: str
    transactions: int
    start: datetime
    end: datetime
    members: list[uuid.UUID]
    accounts: list[uuid.UUID]  # each member's account, in the same order
    issuance: uuid.UUID
    pool: uuid.UUID
    services: uuid.UUID
    zone: str


async def write_history(conn: asyncpg.Connection, plan: HistoryPlan) -> int:
    """Write the plan's transactions in one database transaction (on the owner's connection, with
    search_path timebank); returns how many entries (postings) were written."""
    async with conn.transaction():
        await conn.execute("set local synchronous_commit = off")
        await conn.execute("set local work_mem = '256MB'")
        await conn.execute("set local session_replication_role = replica")
        await conn.execute(CREATE)
        await conn.execute(
            HISTORY,
            plan.community_id, plan.actor, plan.request_id, plan.transactions, plan.start, plan.end,
            plan.members, plan.accounts, plan.issuance, plan.pool, plan.services, plan.zone,
        )  # fmt: skip
        await conn.execute(LEGS)
        for statement in WRITE:
            await conn.execute(statement)
        entries: int = await conn.fetchval("select count(*) from seed_legs")
        unbalanced = await conn.fetchval(BALANCED, plan.community_id, UNIT)
        if unbalanced:
            raise RuntimeError(f"{unbalanced} seeded transactions do not balance")
    return entries
