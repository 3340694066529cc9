"""Reading the audit trail (it is written by the SQL operations themselves)."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
import msgspec

from timebank.audit.models import AuditEvent
from timebank.db import Database


async def list_events(
    db: Database,
    community_id: uuid.UUID | None,
    actor: str | None,
    action: str | None,
    after: datetime | None,
    after_seq: int | None,
    limit: int,
    *,
    before: datetime | None = None,
    actor_name: str | None = None,
    newest_first: bool = False,
) -> tuple[list[AuditEvent], list[asyncpg.Record]]:
    """Events oldest first, keyset-paged on their sequence number (after `after_seq`); or, for the
    pages, newest first (before `after_seq`), up to `before`, by the actor's name as it is now.

    The rows also name the member the event was on behalf of and the member it was about, when so.
    """
    order = "e.seq desc" if newest_first else "e.seq"
    keyset = "($5::bigint is null or e.seq < $5)" if newest_first else "e.seq > coalesce($5::bigint, 0)"
    rows = await db.fetch(
        """
        select e.seq, e.id, e.at, e.actor, e.on_behalf_of, e.action, e.subject_id, e.subject_type,
               c.slug as community, e.request_id, e.details::text as details,
               coalesce(am.display_name, ap.kind, case when e.actor = 'system' then 'system' else 'anonymous' end)
                   as actor_name,
               bm.display_name as on_behalf_of_name, sm.display_name as subject_name
          from audit_events e left join communities c on c.id = e.community_id
          -- The actor is a principal id, `system` or `anonymous`; named as _principal_name names it.
          left join principals ap
                 on ap.id = case when e.actor ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                                 then e.actor::uuid end
          left join members am on am.id = ap.member_id
          left join members bm on bm.id = e.on_behalf_of
          left join members sm on sm.id = e.subject_id and e.subject_type = 'member'
         where ($1::uuid is null or e.community_id = $1)
           and ($2::text is null or e.actor = $2)
           and ($3::text is null or e.action = $3)
           and ($4::timestamptz is null or e.at > $4)
           and ($7::timestamptz is null or e.at < $7)
           and ($8::text is null or coalesce(am.display_name, ap.kind, e.actor) = $8)
           and """
        + keyset
        + """
         order by """
        + order
        + """
         limit $6
        """,
        community_id,
        actor,
        action,
        after,
        after_seq,
        limit + 1,
        before,
        actor_name,
    )
    events = [
        AuditEvent(
            id=r["id"],
            at=r["at"],
            actor=r["actor"],
            actor_name=r["actor_name"],
            on_behalf_of=r["on_behalf_of"],
            action=r["action"],
            subject_id=r["subject_id"],
            subject_type=r["subject_type"],
            community=r["community"],
            request_id=r["request_id"],
            details=msgspec.json.decode(r["details"]),
        )
        for r in rows[:limit]
    ]
    return events, rows


class VerifyRun(msgspec.Struct, frozen=True):
    """The outcome of a `timebank verify` run: when, over what, how many checks and violations."""

    finished_at: datetime
    whole_ledger: bool
    with_checkpoints: bool
    checks: int
    violations: int


async def last_verify_run(db: Database, community_id: uuid.UUID) -> VerifyRun | None:
    """The latest run that checked this community: over the whole ledger or over it alone."""
    row = await db.fetchrow(
        """
        select finished_at, community_id is null as whole_ledger, with_checkpoints, checks, violations
          from verify_runs where community_id is null or community_id = $1
         order by seq desc limit 1
        """,
        community_id,
    )
    return None if row is None else VerifyRun(**dict(row))
