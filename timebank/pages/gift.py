"""/gift: a member gives hours to a relative (or anyone of the community, per its `gift_scope`) or
donates them to the pool. A confirmation step shows both names and the amount before anything
moves; then a large result ("已转给 王芳 2 小时"). A refusal is said next to its field."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import State

from timebank.communities import service as communities
from timebank.communities.models import Community
from timebank.ledger import service as ledger
from timebank.ledger.models import TransferCreate
from timebank.members import relatives
from timebank.members import service as members
from timebank.pages.common import database_of, form_field, render
from timebank.pages.member import Signed, parse_id, posted, signed
from timebank.pages.refusals import sentence
from timebank.pages.results import done
from timebank.pages.results import sentence as result_sentence
from timebank.pages.views import N_
from timebank.pages.words import minutes_in_words
from timebank.pages.writes import act, key_of, new_key

POOL = "pool"
BY_NUMBER = "number"
RELATIVE = "m:"
MAX_HOURS = Decimal(100000)
# Which field a refusal of the transfer is said next to; the others go next to the amount.
ABOUT_RECIPIENT = {"not_a_relative", "same_account", "invalid_transfer_target", "cross_community_not_allowed",
                   "not_found", "no_recipient", "not_eligible"}  # fmt: skip
# A member number that names no one is said next to the number.
FIELD_OF_CODE = {"no_member": "member_no"}


@dataclass
class GiftForm:
    to: str = ""
    member_no: str = ""
    hours: str = ""
    problems: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Recipient:
    member_id: uuid.UUID | None  # None: the community pool
    name: str


def _minutes(hours: str) -> int | None:
    try:
        amount = Decimal(hours.replace(",", ".").replace("，", "."))
    except InvalidOperation:
        return None
    if not amount.is_finite() or not 0 < amount <= MAX_HOURS:
        return None
    minutes = amount * 60
    return int(minutes) if minutes == minutes.to_integral_value() else None


async def _draw(
    request: Request[Any, Any, State], who: Signed, community: Community, form: GiftForm, status: int = 200
) -> Response[Any]:
    db = database_of(request)
    family = await relatives.listed(db, who.principal, who.member.id)
    account = await ledger.get_account(db, who.principal, who.member.account_id)
    return render(
        request, "gift.html", status, form=form, problems=form.problems, relatives=family,
        relatives_only=community.policy.gift_scope == "relatives", available=account.available_minutes,
        **who.page(),
    )  # fmt: skip


@get("/gift", include_in_schema=False)
async def gift_page(request: Request[Any, Any, State]) -> Response[Any]:
    who = await signed(request)
    if not isinstance(who, Signed):
        return who
    community = await communities.get_by_id(database_of(request), who.community_id)
    return await _draw(request, who, community, GiftForm())


async def _recipient(request: Request[Any, Any, State], who: Signed, typed: GiftForm) -> Recipient | str:
    """Who the form names, or the code of what is wrong with it."""
    db = database_of(request)
    if typed.to == POOL:
        return Recipient(None, "")
    if typed.to.startswith(RELATIVE):
        wanted = parse_id(typed.to.removeprefix(RELATIVE))
        family = {r.member_id: r for r in await relatives.listed(db, who.principal, who.member.id)}
        if wanted in family:
            return Recipient(wanted, family[wanted].display_name)
        return "no_recipient"
    if typed.to == BY_NUMBER:
        if not typed.member_no.isdigit():
            return "no_member"
        found, _ = await members.list_members(db, who.community_id, None, None, typed.member_no, None, 5)
        exact = [m for m in found if m.member_no == typed.member_no]
        return Recipient(exact[0].id, exact[0].display_name) if exact else "no_member"
    return "no_recipient"


@post("/gift", include_in_schema=False, status_code=200)
async def gift(request: Request[Any, Any, State]) -> Response[Any]:
    """Without a key: check the form and draw the confirmation step (with a new key). With the key
    of that step: the hours move, once, however often the confirmation is sent."""
    sent = await posted(request)
    if not isinstance(sent, tuple):
        return sent
    who, form = sent
    db = database_of(request)
    community = await communities.get_by_id(db, who.community_id)
    typed = GiftForm(form_field(form, "to"), form_field(form, "member_no"), form_field(form, "hours"))
    recipient = await _recipient(request, who, typed)
    minutes = _minutes(typed.hours)
    if isinstance(recipient, str):
        typed.problems[FIELD_OF_CODE.get(recipient, "to")] = sentence(recipient)
    if minutes is None:
        typed.problems["hours"] = sentence("no_hours")
    if typed.problems:
        return await _draw(request, who, community, typed, 400)
    assert isinstance(recipient, Recipient)
    assert minutes is not None
    key = key_of(form)
    if key is None:
        # Said before the confirmation step; the SQL operation checks both again when the hours move.
        family = {r.member_id for r in await relatives.listed(db, who.principal, who.member.id)}
        outside = recipient.member_id is not None and recipient.member_id not in family
        if outside and community.policy.gift_scope == "relatives":
            typed.problems["to"] = sentence("not_a_relative")
        account = await ledger.get_account(db, who.principal, who.member.account_id)
        if minutes > account.available_minutes:
            typed.problems["hours"] = sentence("insufficient_balance")
        if typed.problems:
            return await _draw(request, who, community, typed, 422)
        return render(
            request, "gift_confirm.html", form=typed, recipient=recipient, amount=minutes_in_words(minutes),
            key=new_key(), **who.page(),
        )  # fmt: skip
    body = TransferCreate(
        from_member_id=who.member.id, minutes=minutes,
        to_member_id=recipient.member_id, to_pool=recipient.member_id is None,
    )  # fmt: skip
    outcome = await act(
        request, who.principal, key, "post_transfer", "transfer", "", body,
        body.from_member_id, body.to_member_id, body.to_pool, body.minutes, body.description,
    )  # fmt: skip
    if outcome.code is not None:
        where = "to" if outcome.code in ABOUT_RECIPIENT else "hours"
        typed.problems[where] = sentence(outcome.code, community.policy.unit_minutes)
        return await _draw(request, who, community, typed, outcome.status)
    amount = minutes_in_words(minutes)
    if recipient.member_id is None:
        result = result_sentence(N_("Given to the community pool: %(amount)s."), amount=amount)
    else:
        result = result_sentence(N_("Given to %(name)s: %(amount)s."), name=recipient.name, amount=amount)
    return done(request, who, N_("Hours given"), result, "/me", N_("Back to my hours"))
