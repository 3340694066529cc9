"""/staff/credit: credit one volunteer or an activity's volunteers (same date and minutes), with one
confirmation step and a large result; /staff/reverse/{id}: correct an entry, with a reason.

Both go through the services the API uses (the credit batch, all or nothing; the reversal), with the
idempotency key made when the confirmation form was drawn: sending it again moves hours once.
"""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.params import FromPath

from timebank.crediting import service as crediting
from timebank.crediting.models import MAX_BATCH_ITEMS, CreditBatch, CreditBatchCreate
from timebank.errors import DomainError
from timebank.http.idempotency import ReplayedProblemError, execute_write
from timebank.http.types import require_calendar_dates
from timebank.ledger import service as ledger
from timebank.ledger.models import ReversalCreate, Transaction
from timebank.members import service as members
from timebank.members.models import Member
from timebank.pages.common import database_of, render
from timebank.pages.staff.common import (
    Refusal,
    Staff,
    form_key,
    member_by_number,
    new_key,
    not_found,
    refusal,
    staff_form,
    staff_of,
    staff_reading,
    text,
    visible,
)
from timebank.pages.staff.problems import problem_words
from timebank.pages.words import day_in_words, minutes_in_words

NUMBERS_SPLIT = re.compile(r"[\s,;，、；]+")
WRITE_ERRORS = (DomainError, ReplayedProblemError, msgspec.ValidationError)


def _today(staff: Staff) -> date:
    return datetime.now(ZoneInfo(staff.time_zone)).date()


def _credit_page(
    request: Request[Any, Any, State], staff: Staff, form: dict[str, Any], status: int = 200,
    problem: Refusal | None = None, unknown: list[str] | None = None, failed: list[tuple[str, str]] | None = None,
) -> Response[Any]:  # fmt: skip
    form = {"service_date": _today(staff).isoformat()} | {k: v for k, v in form.items() if v}
    return render(request, "staff/credit.html", status, section="credit", form=form, problem=problem,
                  unknown=unknown or [], failed=failed or [], **staff.context)  # fmt: skip


@get("/staff/credit", include_in_schema=False)
async def credit_page(request: Request[Any, Any, State]) -> Response[Any]:
    staff = await staff_of(request)
    if isinstance(staff, Response):
        return staff
    return _credit_page(request, staff, {})


def _amounts(form: dict[str, Any]) -> tuple[dict[str, str], date | None, int | None]:
    values = {n: text(form, n, 4000 if n == "numbers" else 500) for n in ("numbers", "service_date", "minutes",
                                                                          "description")}  # fmt: skip
    try:
        day: date | None = date.fromisoformat(values["service_date"])
    except ValueError:
        day = None
    minutes = int(values["minutes"]) if values["minutes"].isdigit() and len(values["minutes"]) <= 6 else None
    return values, day, minutes


@post("/staff/credit/check", include_in_schema=False, status_code=200)
async def credit_check(request: Request[Any, Any, State]) -> Response[Any]:
    """The confirmation step: every volunteer by name, the date, the minutes each and in all."""
    signed = await staff_form(request)
    if isinstance(signed, Response):
        return signed
    staff, form = signed
    values, day, minutes = _amounts(form)
    numbers = [n for n in NUMBERS_SPLIT.split(values["numbers"]) if n][: MAX_BATCH_ITEMS + 1]
    if day is None or minutes is None or not numbers or len(numbers) > MAX_BATCH_ITEMS:
        field = "numbers" if not numbers or len(numbers) > MAX_BATCH_ITEMS else "service_date" if day is None \
            else "minutes"  # fmt: skip
        return _credit_page(request, staff, values, 422, Refusal(problem_words("invalid_request"), "invalid_request",
                                                                 field=field))  # fmt: skip
    db = database_of(request)
    found: list[Member] = []
    unknown: list[str] = []
    for number in dict.fromkeys(numbers):
        member = await member_by_number(db, staff, number[:32])
        if member is None:
            unknown.append(number[:32])
        else:
            found.append(member)
    if unknown:
        problem = Refusal(problem_words("not_a_member"), "not_a_member", field="numbers")
        return _credit_page(request, staff, values, 422, problem, unknown=unknown)
    return render(
        request, "staff/credit_confirm.html", section="credit", volunteers=found, values=values,
        day=day_in_words(day), each=minutes_in_words(minutes), total=minutes_in_words(minutes * len(found)),
        key=new_key(), **staff.context,
    )  # fmt: skip


@post("/staff/credit/confirm", include_in_schema=False, status_code=200)
async def credit_confirm(request: Request[Any, Any, State]) -> Response[Any]:
    """Credit the confirmed volunteers, all or nothing; the result large, or each failing item named."""
    signed = await staff_form(request)
    if isinstance(signed, Response):
        return signed
    staff, form = signed
    values, _day, minutes = _amounts(form)
    raw = await request.form()
    ids = [text({"v": v}, "v", 40) for v in raw.getall("member_id", [])][:MAX_BATCH_ITEMS]
    body = {"community": staff.slug, "service_date": values["service_date"], "description": values["description"],
            "credits": [{"member_id": i, "minutes": minutes} for i in ids]}  # fmt: skip
    db = database_of(request)
    try:
        data = msgspec.convert(body, CreditBatchCreate, strict=False)
        require_calendar_dates(service_date=data.service_date)
        result = await crediting.post(db, request, staff.principal, data, key=form_key(form))
    except WRITE_ERRORS as error:
        problem = refusal(error)
        failed = []
        for index, words in sorted(problem.items.items()):
            name = await _name_of(db, staff, ids[index]) if index < len(ids) else "?"
            failed.append((name, words))
        return _credit_page(request, staff, values, 422, problem, failed=failed)
    batch = msgspec.json.decode(result.body, type=CreditBatch)
    credited = []
    for item, transaction in zip(data.credits, batch.transactions, strict=True):
        credited.append((await _name_of(db, staff, str(item.member_id)), transaction))
    return render(
        request, "staff/credit_done.html", 201 if not result.replayed else 200, section="credit", credited=credited,
        each=minutes_in_words(minutes or 0), day=day_in_words(batch.service_date), count=len(credited),
        total_minutes=batch.total_minutes, total=minutes_in_words(batch.total_minutes), **staff.context,
    )  # fmt: skip


async def _name_of(db: Any, staff: Staff, member_id: str) -> str:
    try:
        return (await members.get_visible(db, staff.principal, uuid.UUID(member_id))).display_name
    except (ValueError, DomainError):
        return "?"


async def _reversal_view(db: Any, staff: Staff, transaction: Transaction) -> dict[str, Any]:
    """Who the entry touched (members by name) and its amount."""
    names = []
    for posting in transaction.postings:
        try:
            account = await ledger.get_account(db, staff.principal, posting.account_id)
        except DomainError:
            continue
        if account.member_id is not None:
            names.append(await _name_of(db, staff, str(account.member_id)))
    minutes = max(abs(p.minutes) for p in transaction.postings)
    return {"transaction": transaction, "names": names, "amount": minutes_in_words(minutes), "minutes": minutes}


@get("/staff/reverse/{transaction_id:uuid}", include_in_schema=False)
async def reverse_page(request: Request[Any, Any, State], transaction_id: FromPath[uuid.UUID]) -> Response[Any]:
    seen = await staff_reading(request, ledger.get_transaction, transaction_id)
    if isinstance(seen, Response):
        return seen
    staff, transaction = seen
    view = await _reversal_view(database_of(request), staff, transaction)
    return render(request, "staff/reverse.html", section="credit", key=new_key(), problem=None, reason="",
                  **view, **staff.context)  # fmt: skip


@post("/staff/reverse/{transaction_id:uuid}", include_in_schema=False, status_code=200)
async def reverse(request: Request[Any, Any, State], transaction_id: FromPath[uuid.UUID]) -> Response[Any]:
    signed = await staff_form(request)
    if isinstance(signed, Response):
        return signed
    staff, form = signed
    transaction = await visible(request, staff, ledger.get_transaction, transaction_id)
    if transaction is None:
        return not_found(request)
    db = database_of(request)
    view = await _reversal_view(db, staff, transaction)
    reason = text(form, "reason")
    try:
        data = msgspec.convert({"reason": reason}, ReversalCreate, strict=False)
        result = await execute_write(
            db, request, staff.principal, "reverse_transaction", "reversal",
            transaction_id, data, transaction_id, data.reason, key=form_key(form),
        )  # fmt: skip
    except WRITE_ERRORS as error:
        return render(request, "staff/reverse.html", 422, section="credit", key=new_key(), problem=refusal(error),
                      reason=reason, **view, **staff.context)  # fmt: skip
    reversal = msgspec.json.decode(result.body, type=Transaction)
    return render(request, "staff/reverse_done.html", section="credit", reversal=reversal, reason=reason, **view,
                  **staff.context)  # fmt: skip
