"""Reading a member's passbook: entries oldest first, each page's proof, all from one snapshot."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from timebank.errors import NotFoundError
from timebank.http.moments import Moment, check_order, resolve_moments
from timebank.log import tree
from timebank.log.leaf import leaf_from_json
from timebank.log.note import TlogProof
from timebank.passbook.fonts import find_font
from timebank.passbook.models import Checkpoint, Page, Passbook, PassbookEntry
from timebank.passbook.render import ROWS_PER_PAGE, render_passbook

_MEMBER = """
    select m.display_name, m.member_no, a.id as account_id, c.name as community_name, c.time_zone,
           now() at time zone c.time_zone as printed_at
      from members m
      join accounts a on a.member_id = m.id and a.kind = 'member'
      join communities c on c.id = m.community_id
     where m.id = $1
"""

# Every posting of the account in the period, oldest first, with its log leaf (if logged yet).
_ENTRIES = """
    select p.transaction_id, t.kind, p.minutes, p.balance_after_minutes, t.description,
           (p.created_at at time zone $4)::date as day, l.leaf_index,
           case when other.kind = 'member' then om.display_name else other.kind end as counterparty_name
      from postings p
      join transactions t on t.id = p.transaction_id
      left join log_leaves l on l.transaction_id = p.transaction_id
      left join lateral (
            select (array_agg(a.kind))[1] as kind, (array_agg(a.member_id))[1] as member_id
              from postings o join accounts a on a.id = o.account_id
             where o.transaction_id = p.transaction_id and o.id <> p.id
            having count(*) = 1
      ) other on true
      left join members om on om.id = other.member_id
     where p.account_id = $1
       and ($2::timestamptz is null or p.created_at >= $2)
       and ($3::timestamptz is null or p.created_at < $3)
     order by p.account_version
"""

_OPENING = """
    select coalesce((select balance_after_minutes from postings
                      where account_id = $1 and created_at < $2
                      order by account_version desc limit 1), 0)
"""


def _local_day(moment: Moment | None, *, end: bool) -> date | None:
    """The day a bound shows as on paper: `to` is exclusive, so a date `to` prints as the day before."""
    if moment is None:
        return None
    if moment.day is not None:
        return moment.day - timedelta(days=1) if end else moment.day
    assert moment.timestamp is not None
    return moment.timestamp.date()


async def _page_proof(conn: Any, page: list[PassbookEntry], checkpoint: Checkpoint | None) -> Page:
    if checkpoint is None:
        return Page(page)
    logged = [e for e in page if e.leaf_index is not None and e.leaf_index < checkpoint.tree_size]
    if not logged:
        return Page(page)
    last = logged[-1]
    assert last.leaf_index is not None
    _, path = await tree.inclusion_path(conn, last.leaf_index, checkpoint.tree_size)
    leaf = await conn.fetchval("select _log_leaf_json($1)::text", last.transaction_id)
    full = TlogProof(last.leaf_index, path, checkpoint.note, leaf_from_json(leaf)).encode()
    short = TlogProof(last.leaf_index, path, checkpoint.note).encode()
    return Page(page, last, full, short)


async def read_passbook(
    conn: Any, member_id: uuid.UUID, start: Moment | None, end: Moment | None, rows_per_page: int
) -> Passbook:
    """The member's passbook cut into pages, read on one connection from one snapshot."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        member = await conn.fetchrow(_MEMBER, member_id)
        if member is None:
            raise NotFoundError("no such member")
        start_at, end_at = await resolve_moments(conn, member["time_zone"], start, end)
        check_order(start_at, end_at)
        rows = await conn.fetch(_ENTRIES, member["account_id"], start_at, end_at, member["time_zone"])
        opening = 0 if start_at is None else await conn.fetchval(_OPENING, member["account_id"], start_at)
        latest = await conn.fetchrow(
            "select tree_size, root_hash, note from log_checkpoints order by tree_size desc limit 1"
        )
        checkpoint = None
        if latest is not None:
            checkpoint = Checkpoint(latest["tree_size"], bytes(latest["root_hash"]), latest["note"])
        entries = [
            PassbookEntry(
                transaction_id=r["transaction_id"],
                kind=r["kind"],
                minutes=r["minutes"],
                balance_after_minutes=r["balance_after_minutes"],
                description=r["description"],
                counterparty_name=r["counterparty_name"],
                day=r["day"],
                leaf_index=r["leaf_index"],
            )
            for r in rows
        ]
        chunks = [entries[i : i + rows_per_page] for i in range(0, len(entries), rows_per_page)] or [[]]
        pages = [await _page_proof(conn, chunk, checkpoint) for chunk in chunks]
    return Passbook(
        member_id=member_id,
        display_name=member["display_name"],
        member_no=member["member_no"],
        community_name=member["community_name"],
        first_day=_local_day(start, end=False),
        last_day=_local_day(end, end=True),
        opening_minutes=opening,
        printed_at=member["printed_at"],
        checkpoint=checkpoint,
        pages=pages,
    )


# How a caller lends a connection for one piece of work: the service's pool (`Database.run`), or the
# command line's own connection (it reads without the service's statement timeout).
Runner = Callable[[Callable[[Any], Awaitable[Passbook]]], Awaitable[Passbook]]


@dataclass(frozen=True)
class PrintedPassbook:
    """The passbook as read, and the PDF drawn from it."""

    passbook: Passbook
    pdf: bytes

    @property
    def filename(self) -> str:
        """The name a saved copy gets: the member's number, never its name."""
        return f"passbook-{self.passbook.member_no}.pdf"


async def print_passbook(
    run: Runner, member_id: uuid.UUID, start: Moment | None, end: Moment | None, font_setting: str | None
) -> PrintedPassbook:
    """The member's passbook as a PDF, for the API, the coordinator's page and `timebank passbook` alike.

    The caller has already decided that whoever asks may read it. The font is looked for first, so a
    machine without one says so (FontMissingError) before any reading; finding it, laying out and
    subsetting the font take a second or two of CPU, so they run off the event loop.
    """
    font = await asyncio.to_thread(find_font, font_setting)
    passbook = await run(lambda conn: read_passbook(conn, member_id, start, end, ROWS_PER_PAGE))
    pdf = await asyncio.to_thread(render_passbook, passbook, font)
    return PrintedPassbook(passbook, pdf)
