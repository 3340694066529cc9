"""What the pages show of the service's records, in the reader's language."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from timebank.db import Database
from timebank.http.context import Principal
from timebank.ledger.models import Entry
from timebank.pages.i18n import gettext
from timebank.pages.words import day_in_words, minutes_in_words, moment_in_words
from timebank.services import service as services
from timebank.services.models import ServiceRequest

# Marked for extraction with N_: translated when drawn, in the reader's language.


def N_(message: str) -> str:  # noqa: N802 - gettext's name for "mark, translate later"
    return message


ENTRY_KINDS = {
    "credit": N_("Hours earned"),
    "redemption": N_("Hours used"),
    "transfer": N_("Gift of hours"),
    "donation": N_("Donation to the pool"),
    "pool_grant": N_("Hours from the pool"),
    "reversal": N_("Correction"),
    "hold_capture": N_("Service paid"),
}
SYSTEM_ACCOUNTS = {"issuance": N_("the time bank"), "pool": N_("the community pool"), "services": N_("services")}
SERVICE_TYPES = {
    "meals": N_("Meals"),
    "cleaning": N_("Cleaning"),
    "bathing": N_("Bathing"),
    "medical_escort": N_("Doctor visits"),
    "companionship": N_("Company and a chat"),
    "errands": N_("Errands"),
}
REQUEST_STATUSES = {
    "open": N_("Waiting for a volunteer"),
    "assigned": N_("A volunteer is coming"),
    "in_progress": N_("Under way"),
    "reported": N_("Done, please confirm"),
    "completed": N_("Completed"),
    "disputed": N_("Being checked"),
    "cancelled": N_("Cancelled"),
}


@dataclass(frozen=True)
class Text:
    """A value to show: `text`, and whether it is a name or data that no catalog translates."""

    text: str
    data: bool = False


@dataclass(frozen=True)
class EntryView:
    day: str
    what: str
    other: Text | None
    minutes: int
    amount: str
    balance: str
    balance_minutes: int


@dataclass(frozen=True)
class RequestView:
    service: Text
    when: str
    minutes: str
    status: str
    status_code: str
    mine: bool


def _counterparty(name: str | None, member: bool) -> Text | None:
    if name is None:
        return None
    if member:
        return Text(name, data=True)
    return Text(gettext(SYSTEM_ACCOUNTS.get(name, name)))


def entry_view(entry: Entry, time_zone: str) -> EntryView:
    day = entry.service_date or entry.created_at.astimezone(ZoneInfo(time_zone)).date()
    return EntryView(
        day=day_in_words(day),
        what=gettext(ENTRY_KINDS.get(entry.kind, entry.kind)),
        other=_counterparty(entry.counterparty_name, entry.counterparty_member_id is not None),
        minutes=entry.minutes,
        amount=("+" if entry.minutes > 0 else "") + minutes_in_words(entry.minutes),
        balance=minutes_in_words(entry.balance_after_minutes),
        balance_minutes=entry.balance_after_minutes,
    )


def service_name(code: str) -> Text:
    known = SERVICE_TYPES.get(code)
    return Text(gettext(known)) if known else Text(code, data=True)


def request_view(request: ServiceRequest, time_zone: str, member_id: object = None) -> RequestView:
    return RequestView(
        service=service_name(request.service_type),
        when=moment_in_words(request.scheduled_at, time_zone),
        minutes=minutes_in_words(request.minutes),
        status=gettext(REQUEST_STATUSES.get(request.status, request.status)),
        status_code=request.status,
        mine=request.member_id == member_id,
    )


async def upcoming_requests(db: Database, principal: Principal, limit: int = 5) -> list[ServiceRequest]:
    """The member's next booked services: those it asked for and those it provides, soonest first."""
    assert principal.community_id is not None
    assert principal.member_id is not None
    found: dict[object, ServiceRequest] = {}
    for filters in ({"member_id": principal.member_id}, {"provider_member_id": principal.member_id}):
        for status in ("open", "assigned", "in_progress"):
            items, _ = await services.list_service_requests(
                db, principal, principal.community_id, filters, status, None, limit
            )
            found |= {item.id: item for item in items}
    now = datetime.now().astimezone()
    ordered = sorted(found.values(), key=lambda r: (r.scheduled_at < now, r.scheduled_at))
    return ordered[:limit]
