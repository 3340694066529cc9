"""A large ledger in seconds: credits written set-wise in SQL, as post_credits writes them.

For workloads that need a big history but do not measure how it was made (the public log's
sealing, proofs and `verify --checkpoints` at 1,000,000 transactions). Going through post_credits
costs about 0.7 ms of PostgreSQL CPU per credit here (ten minutes for a million); this writes the
very rows it would — the transaction, its two postings with running balances and account versions,
the accounts' balances, the `transaction.created` audit event with its content digest — a chunk of
`CHUNK` credits per statement, as the database owner (a superuser: foreign keys are not re-checked;
only the idempotency keys, which no check reads, are left out). The result passes every check of `timebank verify`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence

import asyncpg

CHUNK = 100_000
MINUTES = 15

# $1 actor, $2 request id, $3 communities, $4 issuance accounts, $5 member ids, $6 member accounts
# (one target per array position), $7 the position of the chunk's first credit, $8 the chunk's size.
FILL = """
with targets as (
    select t.*, t.k - 1 as position
      from unnest($3::uuid[], $4::uuid[], $5::uuid[], $6::uuid[])
           with ordinality as t(community_id, issuance, member_id, account, k)
),
ops as materialized (
    select g as j, gen_random_uuid() as tx, t.community_id, c.slug, t.issuance, t.member_id, t.account
      from generate_series($7::bigint, $7::bigint + $8 - 1) g
      join targets t on t.position = g % cardinality($3::uuid[])
      join communities c on c.id = t.community_id
),
legs as materialized (
    select o.j, l.leg, o.tx, l.account_id, l.minutes
      from ops o
     cross join lateral (values (1, o.issuance, -{m}::bigint), (2, o.account, {m}::bigint))
           as l(leg, account_id, minutes)
),
running as materialized (
    select l.*, a.balance_minutes + sum(l.minutes) over w as balance_after, a.version + row_number() over w as version
      from legs l join accounts a on a.id = l.account_id
    window w as (partition by l.account_id order by l.j, l.leg)
),
new_transactions as (
    insert into transactions (id, community_id, kind, description, service_date, created_at, created_by, request_id)
    select o.tx, o.community_id, 'credit', 'bench credit', date '2026-11-01', now(), $1::uuid, $2
      from ops o order by o.j
),
new_postings as (
    insert into postings (transaction_id, account_id, minutes, balance_after_minutes, account_version, created_at)
    select r.tx, r.account_id, r.minutes, r.balance_after, r.version, now() from running r order by r.j, r.leg
),
account_updates as (
    update accounts a set balance_minutes = f.balance_after, version = f.version, updated_at = now()
      from (select distinct on (r.account_id) r.account_id, r.balance_after, r.version
              from running r order by r.account_id, r.j desc, r.leg desc) f
     where a.id = f.account_id
),
events as materialized (
    select o.*, gen_random_uuid() as event_id, clock_timestamp() as at,
           jsonb_build_object('member_id', o.member_id, 'minutes', {m}, 'kind', 'credit', 'postings', jsonb_build_array(
               jsonb_build_object('account_id', o.issuance, 'minutes', -{m}),
               jsonb_build_object('account_id', o.account, 'minutes', {m}))) as details
      from ops o
)
insert into audit_events (id, at, actor, action, subject_type, subject_id, community_id, request_id, details,
                          content_hash)
select e.event_id, e.at, $1::uuid::text, 'transaction.created', 'transaction', e.tx, e.community_id, $2, e.details,
       _audit_event_digest(e.event_id, e.at, $1::uuid::text, null, 'transaction.created', 'transaction', e.tx,
                           e.community_id, $2, e.details)
  from events e order by e.j
""".replace("{m}", str(MINUTES))


async def fill_credits(
    owner_url: str,
    actor: uuid.UUID,
    members: Sequence[uuid.UUID],
    count: int,
    request_id: str = "bench-ledger-fill",
    progress: Callable[[int, float], None] | None = None,
) -> float:
    """`count` credits of MINUTES minutes by `actor` (an admin), spread round-robin over `members`
    (volunteers, each with its account); one database transaction per CHUNK. Returns the seconds taken."""
    conn = await asyncpg.connect(owner_url, server_settings={"search_path": "timebank", "timezone": "UTC"})
    started = time.perf_counter()
    try:
        # Seeding only: commits do not wait for the disk, and (superuser) the foreign-key triggers,
        # which cost more than the rest together, are skipped; the rows are correct by construction.
        await conn.execute(
            "set synchronous_commit = off; set statement_timeout = 0; set work_mem = '256MB';"
            " set session_replication_role = replica"
        )
        rows = await conn.fetch(
            "select m.community_id, i.id as issuance, m.id as member_id, a.id as account"
            "  from unnest($1::uuid[]) with ordinality as u(id, k) join members m on m.id = u.id"
            "  join accounts a on a.member_id = m.id"
            "  join accounts i on i.community_id = m.community_id and i.kind = 'issuance' order by u.k",
            list(members),
        )
        if len(rows) != len(members):
            raise RuntimeError("every member to credit needs an account and a community issuance account")
        columns = [[r[name] for r in rows] for name in ("community_id", "issuance", "member_id", "account")]
        done = 0
        while done < count:
            size = min(CHUNK, count - done)
            await conn.execute(FILL, actor, request_id, *columns, done, size)
            done += size
            if progress is not None:
                progress(done, time.perf_counter() - started)
        await conn.execute("analyze transactions; analyze postings; analyze accounts; analyze audit_events")
    finally:
        await conn.close()
    return time.perf_counter() - started
