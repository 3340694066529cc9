"""Monthly reports: who may read them, and their figures from the ledger (sql/functions/90_reports.sql)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg

from timebank.communities import service as communities
from timebank.db import Database
from timebank.errors import ForbiddenError
from timebank.http.context import Principal
from timebank.http.months import CalendarMonth, month_bounds
from timebank.reports.models import Figures, GridFigures, MonthlyReport, ServiceTypeFigures

READERS = ("coordinator", "auditor")


def _local(moment: datetime, time_zone: str) -> datetime:
    """The moment shown in the community's zone (2026-11-01T00:00:00+08:00), UTC if Python lacks the zone."""
    try:
        return moment.astimezone(ZoneInfo(time_zone))
    except (ZoneInfoNotFoundError, ValueError):
        return moment


def _average(total: int, count: int) -> float | None:
    """A mean rating to two places (half away from zero, as PostgreSQL rounds), or None when nothing was rated."""
    if not count:
        return None
    return float((Decimal(total) / Decimal(count)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _figures(row: asyncpg.Record) -> dict[str, int | float | None]:
    return {
        "earned_minutes": row["earned_minutes"],
        "redeemed_minutes": row["redeemed_minutes"],
        "gifted_minutes": row["gifted_minutes"],
        "donated_minutes": row["donated_minutes"],
        "granted_minutes": row["granted_minutes"],
        "reversed_minutes": row["reversed_minutes"],
        "active_volunteers": row["active_volunteers"],
        "people_served": row["people_served"],
        "services_completed": row["services_completed"],
        "average_rating": _average(row["rating_sum"], row["rating_count"]),
        "outstanding_minutes": row["outstanding_minutes"],
    }


async def monthly_report(
    db: Database, actor: Principal, slug: str, month: CalendarMonth, include_children: bool
) -> MonthlyReport:
    """The month's figures of a community (and, with include_children, of every community below it).

    Admins, and the community's coordinators and auditors (global auditors too); any other member of
    the community gets 403, anyone else 404 (the community's existence is not revealed).
    """
    community = await communities.get_visible(db, actor, slug)
    if not actor.is_staff_of(community.id, *READERS):
        raise ForbiddenError("only coordinators and auditors may read a community's reports")
    time_zone = community.policy.time_zone
    start, end = await month_bounds(db, time_zone, month)
    ids: list[uuid.UUID] = [community.id]
    if include_children:
        ids = await db.fetchval("select community_subtree($1)", community.id)
    rows = await db.fetch(
        """
        select r.*, c.slug
          from report_month($1::uuid[], $2, $3) r
          left join communities c on c.id = r.community_id
         order by r.is_total, c.slug, (r.grid ~ '^[0-9]{1,9}$') desc nulls last,
                  case when r.grid ~ '^[0-9]{1,9}$' then r.grid::integer end, r.grid nulls last
        """,
        ids,
        start,
        end,
    )
    types = await db.fetch("select * from report_month_service_types($1::uuid[], $2, $3)", ids, start, end)
    slugs = await db.fetchval("select array_agg(slug order by seq) from communities where id = any($1::uuid[])", ids)
    total = rows[-1]
    return MonthlyReport(
        community=community.slug,
        month=str(month),
        start=_local(start, time_zone),
        end=_local(end, time_zone),
        include_children=include_children,
        communities=list(slugs),
        totals=Figures(**_figures(total)),  # type: ignore[arg-type]
        by_grid=[
            GridFigures(grid=row["grid"], community=row["slug"], **_figures(row))  # type: ignore[arg-type]
            for row in rows[:-1]
        ],
        by_service_type=[
            ServiceTypeFigures(
                service_type=row["service_type"],
                name=row["name"],
                services_completed=row["services_completed"],
                minutes=row["minutes"],
                average_rating=None if row["average_rating"] is None else float(row["average_rating"]),
            )
            for row in types
        ],
    )
