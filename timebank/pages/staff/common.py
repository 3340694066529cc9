"""What the coordinator's pages share: who may see them, the form's idempotency key, a refusal
said in words, and the member a number names."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec
from litestar import Request, Response
from litestar.datastructures import State

from timebank.communities import service as communities
from timebank.db import Database
from timebank.errors import DomainError, ForbiddenError, NotFoundError
from timebank.http.context import Principal
from timebank.http.idempotency import ReplayedProblemError
from timebank.members import service as members
from timebank.members.models import Member
from timebank.pages import session
from timebank.pages.common import database_of, render, signed_in_principal, to_login
from timebank.pages.staff.problems import problem_words

T = TypeVar("T")


@dataclass(frozen=True)
class Staff:
    """The signed-in coordinator, its community and the CSRF token its forms carry."""

    principal: Principal
    community_id: uuid.UUID
    slug: str
    time_zone: str
    csrf: str
    name: str

    @property
    def context(self) -> dict[str, Any]:
        return {"csrf": self.csrf, "signed_in": True, "staff": True, "signed_in_name": self.name}


async def staff_of(request: Request[Any, Any, State]) -> Staff | Response[Any]:
    """The coordinator, or the answer for everyone else: sign in first, or 403 in words."""
    principal = await signed_in_principal(request)
    if principal is None or principal.member_id is None:
        return to_login(request)
    community_id = principal.community_id
    if community_id is None or not principal.is_staff_of(community_id, "coordinator"):
        return not_for_you(request)
    db = database_of(request)
    token = session.session_token(request)
    assert token is not None
    return Staff(
        principal, community_id, await communities.slug_of(db, community_id),
        await communities.time_zone_of(db, community_id), session.csrf_for(token),
        (await members.get_own(db, principal.member_id)).display_name,
    )  # fmt: skip


async def visible(
    request: Request[Any, Any, State], staff: Staff,
    read: Callable[[Database, Principal, uuid.UUID], Awaitable[T]], thing_id: uuid.UUID,
) -> T | None:  # fmt: skip
    """What a service's `read` gives the coordinator, or None where it refuses (404, or 403 for
    another community's): the page then says "not found" in words, never which of the two it was."""
    try:
        return await read(database_of(request), staff.principal, thing_id)
    except (NotFoundError, ForbiddenError):
        return None


async def staff_reading(
    request: Request[Any, Any, State], read: Callable[[Database, Principal, uuid.UUID], Awaitable[T]],
    thing_id: uuid.UUID,
) -> tuple[Staff, T] | Response[Any]:  # fmt: skip
    """The coordinator and what `read` gives it, or the answer: sign in first, 403 in words for who is
    not a coordinator, or "not found" in words where the service refuses (see visible)."""
    staff = await staff_of(request)
    if isinstance(staff, Response):
        return staff
    found = await visible(request, staff, read, thing_id)
    if found is None:
        return not_found(request)
    return staff, found


async def staff_form(request: Request[Any, Any, State]) -> tuple[Staff, dict[str, Any]] | Response[Any]:
    """The coordinator and its form's fields, or the answer for everyone else: sign in first, 403 in
    words for who is not a coordinator, or refused when the form's CSRF token is wrong."""
    staff = await staff_of(request)
    if isinstance(staff, Response):
        return staff
    form = await checked_form(request)
    if form is None:
        return render(request, "refused.html", 403)
    return staff, form


def not_for_you(request: Request[Any, Any, State]) -> Response[Any]:
    return render(request, "staff/not_for_you.html", 403, signed_in=True, csrf=_csrf(request))


def not_found(request: Request[Any, Any, State]) -> Response[Any]:
    return render(request, "staff/not_found.html", 404, signed_in=True, csrf=_csrf(request))


def _csrf(request: Request[Any, Any, State]) -> str:
    token = session.session_token(request)
    return session.csrf_for(token) if token else ""


async def checked_form(request: Request[Any, Any, State]) -> dict[str, Any] | None:
    """The form's fields (each first value), or None when its CSRF token is wrong."""
    form = await request.form()
    if not session.csrf_ok(session.session_token(request), form.get(session.CSRF_FIELD)):
        return None
    return {name: form.get(name) for name in form}


def text(form: dict[str, Any], name: str, limit: int = 500) -> str:
    """A field as trimmed text without control characters (longer values are cut; the service's own
    limits then say what is too long)."""
    value = form.get(name)
    if not isinstance(value, str):
        return ""
    return "".join(ch for ch in value if ch.isprintable() or ch == "\n").strip()[:limit]


def new_key() -> str:
    """An idempotency key, made when a form that moves hours is drawn."""
    return uuid.uuid4().hex


def form_key(form: dict[str, Any]) -> str:
    """The idempotency key the form carried (made by new_key when it was drawn), for execute_write's
    `key=`: a resubmitted form (same key) is answered by the first answer, and moves hours once.
    Characters outside ASCII become "?", as they did when the key travelled as a header."""
    return text(form, "key", 200).encode("ascii", "replace").decode("ascii")


@dataclass
class Refusal:
    """Why the service refused, in words: one sentence, and the items of a batch that failed."""

    sentence: str
    code: str
    items: dict[int, str] = field(default_factory=dict)
    status: int = 422
    # The form field it is about ("display_name"), when one is named: the sentence goes next to it.
    field: str | None = None


def refusal(error: Exception) -> Refusal:
    """A service's refusal (a DomainError, a remembered one replayed, or a form msgspec refused)."""
    if isinstance(error, ReplayedProblemError):
        body = json.loads(error.result.body or b"{}")
        code, errors, status = str(body.get("code", "invalid_request")), body.get("errors") or [], error.result.status
    elif isinstance(error, DomainError):
        code, errors, status = error.code, error.extra.get("errors") or [], error.status
    else:
        named = re.search(r"\$\.([a-z_]+)", str(error))
        return Refusal(problem_words("invalid_request"), "invalid_request", status=400,
                       field=named.group(1) if named else None)  # fmt: skip
    items: dict[int, str] = {}
    named_field = None
    for item in errors:
        found = item if isinstance(item, dict) else msgspec.structs.asdict(item)
        if found.get("index") is not None:
            items[int(found["index"])] = problem_words(str(found.get("code") or code))
        elif named_field is None and (path := re.search(r"\$\.([a-z_]+)", str(found.get("field", "")))):
            named_field = path.group(1)
    return Refusal(problem_words(code), code, items, status, named_field)


async def member_by_number(db: Database, staff: Staff, number: str) -> Member | None:
    """The community's member with this member_no (or phone), for the coordinator."""
    if not number or len(number) > 32:
        return None
    found, _ = await members.list_members(db, staff.community_id, None, None, number, None, 5)
    exact = [m for m in found if number in (m.member_no, m.phone)]
    return exact[0] if exact else None
