"""`timebank verify`: prove the ledger's invariants from what is stored.

Each check is one query returning the rows that break it; no rows means the check holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import asyncpg


@dataclass(frozen=True)
class Check:
    name: str
    description: str
    query: str


@dataclass
class Report:
    checked: dict[str, int] = field(default_factory=dict)
    violations: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


# $1 is the community id to restrict to, or null for all communities.
CHECKS: tuple[Check, ...] = (
    Check(
        "community_sums_to_zero",
        "the balances of each community's accounts sum to zero",
        """
        with per_account as (
            select account_id, sum(minutes) as total from postings group by account_id
        ),
        per_community as (
            select a.community_id, sum(a.balance_minutes) as balances, coalesce(sum(p.total), 0) as postings
              from accounts a left join per_account p on p.account_id = a.id
             where ($1::uuid is null or a.community_id = $1)
             group by a.community_id
        )
        select format('community %s: balances sum to %s, postings to %s', c.slug, s.balances, s.postings)
          from per_community s join communities c on c.id = s.community_id
         where s.balances <> 0 or s.postings <> 0
        """,
    ),
    Check(
        "balance_equals_postings",
        "every stored balance and version equals the sum and count of the account's postings",
        """
        select format('account %s: stored balance %s version %s, postings sum %s count %s',
                      a.id, a.balance_minutes, a.version, coalesce(p.total, 0), coalesce(p.n, 0))
          from accounts a
          left join (select account_id, sum(minutes) as total, count(*) as n from postings group by account_id) p
            on p.account_id = a.id
         where ($1::uuid is null or a.community_id = $1)
           and (a.balance_minutes <> coalesce(p.total, 0) or a.version <> coalesce(p.n, 0))
        """,
    ),
    Check(
        "running_balances_consistent",
        "each entry's balance_after equals the previous entry's plus its minutes, versions 1, 2, 3, ...",
        """
        select format('account %s: entry of transaction %s (version %s) has balance_after %s, expected %s',
                      account_id, transaction_id, account_version, balance_after_minutes, expected)
          from (select p.account_id, p.transaction_id, p.account_version, p.balance_after_minutes,
                       coalesce(lag(p.balance_after_minutes) over w, 0) + p.minutes as expected,
                       row_number() over w as position
                  from postings p join accounts a on a.id = p.account_id
                 where ($1::uuid is null or a.community_id = $1)
                window w as (partition by p.account_id order by p.account_version)) e
         where e.balance_after_minutes <> e.expected or e.account_version <> e.position
        """,
    ),
    Check(
        "transactions_balanced",
        "every transaction has two or more postings summing to zero, all in its own community",
        """
        select format('transaction %s: %s postings summing to %s, %s outside its community',
                      t.id, count(p.id), coalesce(sum(p.minutes), 0),
                      count(*) filter (where a.community_id <> t.community_id))
          from transactions t
          left join postings p on p.transaction_id = t.id
          left join accounts a on a.id = p.account_id
         where ($1::uuid is null or t.community_id = $1)
         group by t.id
        having count(p.id) < 2 or coalesce(sum(p.minutes), 0) <> 0
            or count(*) filter (where a.community_id <> t.community_id) > 0
        """,
    ),
    Check(
        "postings_have_transactions",
        "every posting belongs to a transaction",
        """
        select format('posting %s on account %s: no transaction %s', p.id, p.account_id, p.transaction_id)
          from postings p join accounts a on a.id = p.account_id
         where ($1::uuid is null or a.community_id = $1)
           and not exists (select 1 from transactions t where t.id = p.transaction_id)
        """,
    ),
    Check(
        "held_amounts_agree",
        "each account's held minutes equal the sum of its unresolved holds",
        """
        select format('account %s: held %s, unresolved holds sum to %s', a.id, a.held_minutes, coalesce(h.total, 0))
          from accounts a
          left join (select account_id, sum(minutes) as total from holds h
                      where not exists (select 1 from hold_resolutions r where r.hold_id = h.id)
                      group by account_id) h on h.account_id = a.id
         where ($1::uuid is null or a.community_id = $1) and a.held_minutes <> coalesce(h.total, 0)
        """,
    ),
    Check(
        "captures_match_holds",
        "every captured hold has its hold_capture transaction and no more than it held",
        """
        select format('hold %s: captured by %s, which is %s', h.id, r.transaction_id,
                      coalesce(t.kind || ' of ' || t.hold_id, 'missing'))
          from holds h join hold_resolutions r on r.hold_id = h.id
          left join transactions t on t.id = r.transaction_id
         where ($1::uuid is null or h.community_id = $1) and r.status = 'captured'
           and (t.id is null or t.hold_id is distinct from h.id or t.kind <> 'hold_capture'
                or (select max(p.minutes) from postings p where p.transaction_id = t.id) > h.minutes)
        """,
    ),
    Check(
        "reversals_mirror_originals",
        "every reversal links to its original and negates each of its postings exactly",
        """
        with reversals as materialized (
            select id, reverses from transactions r
             where ($1::uuid is null or r.community_id = $1) and r.kind = 'reversal'
        )
        select format('reversal %s of %s does not mirror it', r.id, r.reverses)
          from reversals r
         where (not exists (select 1 from transactions o where o.id = r.reverses and o.kind <> 'reversal')
                or exists (select account_id, -minutes from postings where transaction_id = r.reverses
                           except all select account_id, minutes from postings where transaction_id = r.id)
                or exists (select account_id, minutes from postings where transaction_id = r.id
                           except all select account_id, -minutes from postings where transaction_id = r.reverses))
        """,
    ),
    Check(
        "transactions_audited",
        "every transaction has exactly one transaction.created audit event",
        """
        select format('transaction %s: %s transaction.created events', t.id, count(e.seq))
          from transactions t
          left join audit_events e on e.subject_id = t.id and e.action = 'transaction.created'
         where ($1::uuid is null or t.community_id = $1)
         group by t.id having count(e.seq) <> 1
        """,
    ),
    Check(
        "audit_subjects_exist",
        "every audit event's subject exists",
        """
        select format('audit event %s (%s): %s %s does not exist', e.id, e.action, e.subject_type, e.subject_id)
          from audit_events e
          left join (select id, 'transaction' as kind from transactions
                     union all select id, 'member' from members
                     union all select id, 'community' from communities
                     union all select id, 'hold' from holds
                     union all select id, 'principal' from principals
                     union all select id, 'service_request' from service_requests) x
            on x.id = e.subject_id and x.kind = e.subject_type
         where ($1::uuid is null or e.community_id = $1) and e.subject_id is not null and x.id is null
        """,
    ),
    Check(
        "audit_events_unaltered",
        "every audit event still has the content it was written with (its stored SHA-256 matches)",
        """
        select format('audit event %s (%s, subject %s): content does not match its digest',
                      e.id, e.action, coalesce(e.subject_id::text, '-'))
          from audit_events e
         where ($1::uuid is null or e.community_id = $1)
           and e.content_hash is distinct from _audit_event_digest(e.id, e.at, e.actor, e.on_behalf_of, e.action,
                   e.subject_type, e.subject_id, e.community_id, e.request_id, e.details)
        """,
    ),
    Check(
        "audit_events_consistent",
        "each transaction.created event records the postings its transaction has",
        """
        select format('audit event %s: records postings %s, transaction %s has %s',
                      e.id, e.details->'postings', e.subject_id, p.postings)
          from audit_events e
          left join (select transaction_id,
                            jsonb_agg(jsonb_build_object('account_id', account_id, 'minutes', minutes) order by id)
                              as postings
                       from postings group by transaction_id) p on p.transaction_id = e.subject_id
         where ($1::uuid is null or e.community_id = $1) and e.action = 'transaction.created'
           and e.details->'postings' is distinct from p.postings
        """,
    ),
    # Service requests (timebank/services): the hours of a request move once, when it completes.
    Check(
        "service_requests_paid_once",
        "each completed service request has exactly one transaction, the one it names; any other has none",
        """
        select format('service request %s (%s): names transaction %s, transactions naming it: %s',
                      r.id, r.status, coalesce(r.transaction_id::text, 'none'), coalesce(t.ids, 'none'))
          from service_requests r
          left join (select service_request_id, count(*) as n, string_agg(id::text, ', ' order by seq) as ids,
                            (array_agg(id))[1] as only_id
                       from transactions where service_request_id is not null
                      group by service_request_id) t on t.service_request_id = r.id
         where ($1::uuid is null or r.community_id = $1)
           and case when r.status = 'completed'
                    then t.n is distinct from 1 or r.transaction_id is distinct from t.only_id
                    else t.n is not null or r.transaction_id is not null end
        """,
    ),
    Check(
        "service_request_holds_resolved",
        "each service request's hold agrees with its status: captured by its transaction when completed,"
        " released or expired when cancelled, still unresolved otherwise",
        """
        select format('service request %s (%s, %s): hold %s is %s', r.id, r.status, r.funding,
                      coalesce(r.hold_id::text, 'none'),
                      coalesce(x.status || coalesce(' by ' || x.transaction_id, ''), 'unresolved'))
          from service_requests r
          left join hold_resolutions x on x.hold_id = r.hold_id
         where ($1::uuid is null or r.community_id = $1)
           and case when r.funding = 'community' then r.hold_id is not null
                    when r.status = 'completed'
                    then x.status is distinct from 'captured' or x.transaction_id is distinct from r.transaction_id
                    when r.status = 'cancelled' then x.status is null or x.status not in ('released', 'expired')
                    else x.status is not null end
        """,
    ),
)


# The checks that read the most, started first when several connections share the work.
HEAVIEST_FIRST = ("audit_events_consistent", "audit_events_unaltered", "running_balances_consistent")
# Each check sorts or hashes whole tables: enough memory to do it without spilling to disk.
WORK_MEM = "set local work_mem = '256MB'"
SNAPSHOT_ID = re.compile(r"^[0-9A-F]+-[0-9A-F]+(-[0-9]+)?$")


async def _all_or_none(works: Iterable[Coroutine[Any, Any, None]]) -> None:
    """Run the works at once; when one fails (or this is cancelled), cancel the others and wait
    until every one has ended, then raise a failure (the first work's, in order).

    Each work runs queries on its own connection. Until its task has ended, a connection may still
    be in the middle of a query, and the rollback that follows a failure would meet asyncpg's
    "another operation is in progress" instead of the error that caused it (asyncio.gather leaves
    the other tasks running when one fails). A cancelled query is cancelled on the server too, and
    asyncpg waits for that before the connection's next statement.
    """
    tasks = [asyncio.create_task(work) for work in works]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in tasks:
        if not task.cancelled() and (error := task.exception()) is not None:
            raise error


async def verify(
    conn: asyncpg.Connection,
    community_id: uuid.UUID | None = None,
    helpers: Sequence[asyncpg.Connection] = (),
) -> Report:
    """Run every check in one repeatable-read snapshot.

    With helper connections, checks run on all of them at once, each helper importing the first
    connection's snapshot (pg_export_snapshot), so every check still sees the very same ledger.
    """
    rank = {name: i for i, name in enumerate(HEAVIEST_FIRST)}
    order = sorted(CHECKS, key=lambda check: rank.get(check.name, len(rank)))
    pending = list(order)
    found: dict[str, list[str]] = {}

    async def work(connection: asyncpg.Connection) -> None:
        while pending:
            check = pending.pop(0)
            rows = await connection.fetch(check.query, community_id)
            found[check.name] = [row[0] for row in rows]

    snapshot_transaction = conn.transaction(isolation="repeatable_read", readonly=True)
    await snapshot_transaction.start()
    joined: list[asyncpg.Connection] = []
    try:
        await conn.execute(WORK_MEM)
        if helpers:
            snapshot = await conn.fetchval("select pg_export_snapshot()")
            if not SNAPSHOT_ID.match(snapshot):
                raise RuntimeError(f"unexpected snapshot id {snapshot!r}")
            for helper in helpers:
                await helper.execute("begin isolation level repeatable read read only")
                joined.append(helper)
                await helper.execute(f"set transaction snapshot '{snapshot}'")
                await helper.execute(WORK_MEM)
        await _all_or_none(work(c) for c in (conn, *joined))
    except BaseException:
        # The failure is what the caller must see: a connection it closed (the server went away)
        # cannot roll back, and that second error must not take the first one's place.
        rollbacks: list[Callable[[], Awaitable[object]]] = [snapshot_transaction.rollback]
        rollbacks += [partial(helper.execute, "rollback") for helper in joined]
        for rollback in rollbacks:
            with contextlib.suppress(asyncpg.InterfaceError, asyncpg.PostgresError, OSError):
                await rollback()
        raise
    for helper in joined:
        await helper.execute("rollback")
    await snapshot_transaction.commit()
    report = Report()
    for check in CHECKS:
        report.checked[check.name] = len(found[check.name])
        report.violations.extend((check.name, message) for message in found[check.name])
    return report
