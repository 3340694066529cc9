"""/staff: the coordinator's work of today, each item linking to where it is handled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import Request, Response, get
from litestar.datastructures import State

from timebank.errors import DomainError
from timebank.holds import service as holds
from timebank.members import service as members
from timebank.pages.common import database_of, render
from timebank.pages.staff.common import staff_of
from timebank.pages.views import request_view
from timebank.pages.words import minutes_in_words, moment_in_words
from timebank.services import service as services

# Holds that expire within this many days are "about to expire".
EXPIRING_DAYS = 3
LIST_MAX = 10


@get("/staff", include_in_schema=False)
async def staff_home(request: Request[Any, Any, State]) -> Response[Any]:
    staff = await staff_of(request)
    if isinstance(staff, Response):
        return staff
    db = database_of(request)
    work: dict[str, list[Any]] = {}
    for status in ("open", "reported", "disputed"):
        items, _ = await services.list_service_requests(
            db, staff.principal, staff.community_id, {}, status, None, LIST_MAX
        )
        work[status] = [(r, request_view(r, staff.time_zone)) for r in items]
    pending, _ = await holds.list_holds(db, staff.community_id, None, "pending", None, 200)
    soon = datetime.now(UTC) + timedelta(days=EXPIRING_DAYS)
    expiring = []
    for hold in sorted((h for h in pending if h.expires_at <= soon), key=lambda h: h.expires_at)[:LIST_MAX]:
        try:
            member = await members.get_visible(db, staff.principal, hold.member_id)
        except DomainError:
            continue
        expiring.append({"member": member, "minutes": minutes_in_words(hold.minutes),
                         "expires": moment_in_words(hold.expires_at, staff.time_zone)})  # fmt: skip
    return render(request, "staff/home.html", work=work, expiring=expiring, **staff.context)
