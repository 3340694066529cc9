"""The pages of those who watch over a community: the monthly report (coordinators and auditors) and
the audit trail with the public log's latest signed checkpoint (auditors and coordinators).

Both only read: no form on them writes (the filters are GET forms). They call the same services as
`GET /v1/communities/{slug}/reports/monthly`, `GET /v1/audit-events` and `GET /v1/log/checkpoint`.
A signed-in person without the role is told so (403); a community the person may not see is 404.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from litestar import Request, Response, get
from litestar.datastructures import State

from timebank.audit import service as audit
from timebank.communities import service as communities
from timebank.communities.models import Community
from timebank.db import Database
from timebank.errors import DomainError, ForbiddenError, InvalidRequestError
from timebank.http.context import Principal
from timebank.http.months import CalendarMonth, parse_month
from timebank.log import service as public_log
from timebank.members import service as members
from timebank.pages import session
from timebank.pages.charts import Bar, grid_bars, trend_columns
from timebank.pages.common import database_of, render, signed_in_principal, to_login
from timebank.pages.i18n import current_language, gettext
from timebank.pages.oversight_words import ACTIONS, SUBJECT_TYPES, actor_text, grid_label
from timebank.pages.token_signin import login_with_token
from timebank.pages.views import Text, service_name
from timebank.pages.words import day_in_words, moment_in_words
from timebank.reports import csv as report_csv
from timebank.reports import service as reports
from timebank.reports.models import MonthlyReport

READERS = ("coordinator", "auditor")
AUDIT_PAGE_SIZE = 25
# The command whose runs /audit reports (a command's name: shown as code, never translated).
VERIFY_COMMAND = "timebank verify"
TREND_MONTHS = 12
_DAY = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")


@dataclass(frozen=True)
class Overseer:
    principal: Principal
    csrf: str
    community: Community
    # For those who may read every community (admins, auditors of all): the communities to choose from.
    choices: list[Community]
    # The member's name; none for an admin or auditor signed in with an access key.
    name: str | None


def _query(request: Request[Any, Any, State], name: str, limit: int = 64) -> str:
    """A query parameter as text: printable characters only, trimmed, at most `limit` characters."""
    value = request.query_params.get(name) or ""
    return "".join(ch for ch in value if ch.isprintable()).strip()[:limit]


def _away(request: Request[Any, Any, State], status: int, csrf: str | None) -> Response[Any]:
    """A page that is not for this person (403), or a community the person may not see (404)."""
    return render(request, "away.html", status, reason=status, csrf=csrf, signed_in=csrf is not None)


async def overseer(request: Request[Any, Any, State]) -> Overseer | Response[Any]:
    """Who reads and which community, or the answer when there is nothing to read."""
    principal = await signed_in_principal(request)
    if principal is None:
        return to_login(request)
    token = session.session_token(request)
    assert token is not None
    csrf = session.csrf_for(token)
    if not (principal.reads_everything or set(READERS) & set(principal.roles)):
        return _away(request, 403, csrf)
    db = database_of(request)
    choices: list[Community] = []
    if principal.reads_everything:
        choices, _ = await communities.list_visible(db, principal, None, 200)
    slug = _query(request, "community", 63)
    try:
        if slug:
            community = await communities.get_visible(db, principal, slug)
        elif principal.community_id is not None:
            community = await communities.get_by_id(db, principal.community_id)
        elif choices:
            community = choices[0]
        else:
            return _away(request, 404, csrf)
    except DomainError:
        return _away(request, 404, csrf)
    if choices and all(c.slug != community.slug for c in choices):
        # The chooser lists the first communities; the one being read is always among them.
        choices = [community, *choices]
    name = None if principal.member_id is None else (await members.get_own(db, principal.member_id)).display_name
    return Overseer(principal, csrf, community, choices, name)


def home_of(principal: Principal) -> str:
    """Where `/` sends a person: coordinators to today's work (even when also a member), auditors
    and admins to the audit trail, members to their hours."""
    if "coordinator" in principal.roles:
        return "/staff"
    if principal.reads_everything or "auditor" in principal.roles:
        return "/audit"
    if principal.member_id is not None:
        return "/me"
    return "/login"


def last_full_month(time_zone: str, now: datetime | None = None) -> CalendarMonth:
    """The month before the current one where the community is."""
    local = (now or datetime.now(UTC)).astimezone(ZoneInfo(time_zone))
    return CalendarMonth(local.year - 1, 12) if local.month == 1 else CalendarMonth(local.year, local.month - 1)


def shift(month: CalendarMonth, by: int) -> CalendarMonth:
    index = month.year * 12 + month.month - 1 + by
    return CalendarMonth(index // 12, index % 12 + 1)


def month_in_words(month: CalendarMonth) -> str:
    if current_language.get() == "zh":
        return f"{month.year}年{month.month}月"
    return date(month.year, month.month, 1).strftime("%B %Y")


def _rating(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _in_range(month: CalendarMonth) -> bool:
    return 1900 <= month.year <= 2999


async def _month_of(request: Request[Any, Any, State], community: Community) -> tuple[CalendarMonth, bool]:
    """The month asked for, or the last full month; and whether what was asked for was no month."""
    raw = request.query_params.get("month")
    if raw is None or raw == "":
        return last_full_month(community.policy.time_zone), False
    try:
        return parse_month("month", raw), False
    except InvalidRequestError:
        return last_full_month(community.policy.time_zone), True


async def _report(db: Database, who: Overseer, month: CalendarMonth) -> MonthlyReport:
    return await reports.monthly_report(db, who.principal, who.community.slug, month, False)


@get("/staff/reports", include_in_schema=False)
async def reports_page(request: Request[Any, Any, State]) -> Response[Any]:
    who = await overseer(request)
    if isinstance(who, Response):
        return who
    return await _reports(request, who)


async def _reports(request: Request[Any, Any, State], who: Overseer) -> Response[Any]:
    month, bad_month = await _month_of(request, who.community)
    db = database_of(request)
    try:
        report = await _report(db, who, month)
        # The 11 months before, each from the same service as the month itself (12 reports in all).
        earlier = [shift(month, -k) for k in range(TREND_MONTHS - 1, 0, -1)]
        trend = [*[(m, await _report(db, who, m)) for m in earlier if _in_range(m)], (month, report)]
    except ForbiddenError:
        return _away(request, 403, who.csrf)
    by_grid = [
        Bar(grid_label(row.grid), row.earned_minutes, row.redeemed_minutes, label_is_data=False)
        for row in report.by_grid
    ]
    months = [(m.year, m.month, Bar(str(m), r.totals.earned_minutes, r.totals.redeemed_minutes)) for m, r in trend]
    current = shift(last_full_month(who.community.policy.time_zone), 1)
    query = {"month": str(month)}
    if who.choices:
        query["community"] = who.community.slug
    table_note = gettext("The same numbers are in the table below the chart.")
    grid_chart = grid_bars(
        "grid-chart",
        gettext("Hours earned and redeemed per grid, %(month)s") % {"month": month_in_words(month)},
        table_note,
        by_grid,
    )
    trend_chart = trend_columns(
        "trend-chart",
        gettext("Hours earned and redeemed, the 12 months to %(month)s") % {"month": month_in_words(month)},
        table_note,
        months,
        gettext("hours"),
    )
    return render(
        request, "reports.html", 400 if bad_month else 200, csrf=who.csrf, signed_in=True, who=who,
        signed_in_name=who.name,
        report=report, month=month, month_words=month_in_words(month), bad_month=bad_month,
        asked_month=_query(request, "month", 20) if bad_month else str(month),
        previous_query=urlencode(query | {"month": str(shift(month, -1))}) if _in_range(shift(month, -1)) else None,
        following_query=urlencode(query | {"month": str(shift(month, 1))}) if str(month) < str(current) else None,
        grid_chart=grid_chart, trend_chart=trend_chart, grid_label=grid_label, rating=_rating,
        service_types=[(service_name(t.service_type), t) for t in report.by_service_type],
        trend=[(month_in_words(m), r.totals) for m, r in trend],
        first_month=month_in_words(trend[0][0]), csv_query=urlencode(query),
        coordinator="coordinator" in who.principal.roles,
    )  # fmt: skip


@get("/staff/reports/csv", include_in_schema=False)
async def reports_csv(request: Request[Any, Any, State]) -> Response[Any]:
    """The same CSV as the API's (BOM, CRLF, a row per grid and a total row), in the page's language."""
    who = await overseer(request)
    if isinstance(who, Response):
        return who
    month, bad_month = await _month_of(request, who.community)
    if bad_month:
        return await _reports(request, who)
    try:
        report = await _report(database_of(request), who, month)
    except ForbiddenError:
        return _away(request, 403, who.csrf)
    body = report_csv.render(report, current_language.get())
    return Response(
        body,
        media_type=report_csv.MEDIA_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{report_csv.filename(report)}"',
            "Content-Language": "zh-CN" if current_language.get() == "zh" else "en",
        },
    )


@dataclass(frozen=True)
class EventView:
    when: str
    action: Text
    actor: Text
    on_behalf_of: str | None
    subject: Text | None


def _day(raw: str) -> date | None:
    """A day written YYYY-MM-DD in 1900–2999, or None."""
    match = _DAY.fullmatch(raw) if len(raw) == 10 else None
    if match is None or not 1900 <= int(match[1]) <= 2999:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def _event_view(row: Any, time_zone: str) -> EventView:
    action = ACTIONS.get(row["action"])
    subject: Text | None = None
    if row["subject_name"]:
        subject = Text(row["subject_name"], data=True)
    elif row["subject_type"]:
        known = SUBJECT_TYPES.get(row["subject_type"])
        subject = Text(gettext(known)) if known else Text(row["subject_type"], data=True)
    return EventView(
        when=moment_in_words(row["at"], time_zone),
        action=Text(gettext(action)) if action else Text(row["action"], data=True),
        actor=actor_text(row["actor_name"]),
        on_behalf_of=row["on_behalf_of_name"],
        subject=subject,
    )


@get("/audit", include_in_schema=False)
async def audit_page(request: Request[Any, Any, State]) -> Response[Any]:
    who = await overseer(request)
    if isinstance(who, Response):
        return who
    time_zone = who.community.policy.time_zone
    zone = ZoneInfo(time_zone)
    action = _query(request, "action")
    actor = _query(request, "actor")
    raw_from, raw_to = _query(request, "from", 20), _query(request, "to", 20)
    since, until = _day(raw_from), _day(raw_to)
    problems = {
        name: True for name, raw, day in (("from", raw_from, since), ("to", raw_to, until)) if raw and day is None
    }
    if since and until and until < since:
        problems["to"] = True
    before_text = _query(request, "before", 20)
    before_seq = int(before_text) if before_text.isdigit() and len(before_text) <= 18 else None
    after_at = datetime.combine(since, time(), zone) - timedelta(microseconds=1) if since else None
    before_at = datetime.combine(until + timedelta(days=1), time(), zone) if until else None
    db = database_of(request)
    rows: list[Any] = []
    if not problems:
        _, rows = await audit.list_events(
            db, who.community.id, None, action or None, after_at, before_seq, AUDIT_PAGE_SIZE,
            before=before_at, actor_name=actor or None, newest_first=True,
        )  # fmt: skip
    events = [_event_view(row, time_zone) for row in rows[:AUDIT_PAGE_SIZE]]
    older = rows[AUDIT_PAGE_SIZE - 1]["seq"] if len(rows) > AUDIT_PAGE_SIZE else None
    filters = {"action": action, "actor": actor, "from": raw_from, "to": raw_to}
    if who.choices:
        filters["community"] = who.community.slug
    checkpoint = await public_log.latest_checkpoint_summary(db)
    verified = await audit.last_verify_run(db, who.community.id)
    return render(
        request, "audit.html", 400 if problems else 200, csrf=who.csrf, signed_in=True, who=who, events=events,
        signed_in_name=who.name,
        older=older, first_page=before_seq is None, filters=filters, problems=problems,
        older_query=urlencode({k: v for k, v in filters.items() if v}),
        actions=sorted(((gettext(words), code) for code, words in ACTIONS.items()), key=lambda a: a[0]),
        checkpoint=checkpoint,
        verified=verified,
        verify_command=VERIFY_COMMAND,
        verified_when=moment_in_words(verified.finished_at, time_zone) if verified else None,
        signed_when=moment_in_words(checkpoint.signed_at, time_zone) if checkpoint else None,
        signed_day=day_in_words(checkpoint.signed_at.astimezone(zone).date()) if checkpoint else None,
        coordinator="coordinator" in who.principal.roles,
    )  # fmt: skip


OVERSIGHT_PAGES = [reports_page, reports_csv, audit_page, login_with_token]
