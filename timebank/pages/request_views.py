"""A service request as the member pages show it: who, where, what, when, how long, and its state.

Only what the API shows of the person served: name and grid (never a phone or birth date).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from timebank.db import Database
from timebank.pages.i18n import gettext
from timebank.pages.member import Signed
from timebank.pages.views import REQUEST_STATUSES, Text, service_name
from timebank.pages.words import minutes_in_words, moment_in_words
from timebank.services import service as services
from timebank.services.models import ServiceRequest, ServiceRequestStatus

PAGE_SIZE = 30


@dataclass(frozen=True)
class Card:
    id: uuid.UUID
    member_name: str
    grid: str | None
    provider_name: str | None
    service: Text
    when: str
    minutes: int
    amount: str
    reported: str | None
    status: str
    status_code: str
    rating: int | None


def card(request: ServiceRequest, time_zone: str) -> Card:
    reported = request.reported_minutes
    return Card(
        id=request.id,
        member_name=request.member_name,
        grid=request.grid,
        provider_name=request.provider_name,
        service=service_name(request.service_type),
        when=moment_in_words(request.scheduled_at, time_zone),
        minutes=request.minutes,
        amount=minutes_in_words(request.minutes),
        reported=minutes_in_words(reported) if reported is not None else None,
        status=gettext(REQUEST_STATUSES.get(request.status, request.status)),
        status_code=request.status,
        rating=request.rating,
    )


async def requests_of(
    db: Database, who: Signed, field: str | None, *statuses: ServiceRequestStatus | None
) -> list[ServiceRequest]:
    """The community's requests the member may read: `field` (member_id or provider_member_id) is the
    member itself, in any of `statuses` (None: every status), newest first."""
    filters = {field: who.member.id} if field else {}
    found: dict[uuid.UUID, ServiceRequest] = {}
    for status in statuses or (None,):
        items, _ = await services.list_service_requests(
            db, who.principal, who.community_id, filters, status, None, PAGE_SIZE
        )
        found |= {item.id: item for item in items}
    return sorted(found.values(), key=lambda r: r.created_at, reverse=True)[:PAGE_SIZE]
