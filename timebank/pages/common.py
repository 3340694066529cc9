"""What every page handler shares: the reader's language, the signed-in principal, drawing a
template with the page's common context, reading a form field, the redirect to sign-in."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar import Request, Response
from litestar.datastructures import Cookie, State
from litestar.response import Redirect, Template

from timebank.communities import service as communities
from timebank.db import Database
from timebank.errors import DomainError
from timebank.http.context import Principal, principal_for_token
from timebank.members import service as members
from timebank.pages import session
from timebank.pages.i18n import HTML_LANG, LANGUAGE_COOKIE, choose, current_language

MAX_FIELD_CHARS = 64


async def set_language(request: Request[Any, Any, State]) -> None:
    """Before each page: the language it is drawn in (an async hook, so the value reaches the template)."""
    current_language.set(choose(request.cookies.get(LANGUAGE_COOKIE), request.headers.getall("accept-language", [])))


def database_of(request: Request[Any, Any, State]) -> Database:
    """The primary; for a page read (GET, HEAD) with read replicas, the database that may answer it."""
    db: Database = request.app.state.db
    reads = request.app.state.get("reads")
    if reads is None:
        return db
    return reads.database_for(request.scope)  # type: ignore[no-any-return]


async def signed_in_principal(request: Request[Any, Any, State]) -> Principal | None:
    token = session.session_token(request)
    if token is None:
        return None
    try:
        return await principal_for_token(request, token)
    except DomainError:
        return None


def render(
    request: Request[Any, Any, State],
    name: str,
    status_code: int = 200,
    cookies: list[Cookie] | None = None,
    **context: Any,
) -> Response[Any]:
    language = current_language.get()
    context |= {
        "html_lang": HTML_LANG[language],
        "other_language": "en" if language == "zh" else "zh",
        "here": quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""), safe="/?=&"),
    }
    return Template(template_name=name, context=context, status_code=status_code, cookies=cookies or [])


def to_login(request: Request[Any, Any, State]) -> Response[Any]:
    response: Response[Any] = Redirect("/login", status_code=303)
    if session.session_token(request) is not None:
        response.set_cookie(session.expired(request, session.SESSION_COOKIE))
    return response


def form_field(form: Any, name: str) -> str:
    """A form field as text: trimmed, at most 64 characters, and no control characters (PostgreSQL
    refuses NUL in text, and no slug, number or PIN has any)."""
    value = form.get(name)
    if not isinstance(value, str):
        return ""
    return "".join(ch for ch in value if ch.isprintable()).strip()[:MAX_FIELD_CHARS]


def refused(request: Request[Any, Any, State]) -> Response[Any]:
    return render(request, "refused.html", 403)


async def member_context(request: Request[Any, Any, State]) -> tuple[Principal, Any, str] | None:
    principal = await signed_in_principal(request)
    if principal is None or principal.member_id is None:
        return None
    member = await members.get_own(database_of(request), principal.member_id)
    token = session.session_token(request)
    assert token is not None
    return principal, member, session.csrf_for(token)


async def community_time_zone(db: Database, principal: Principal) -> str:
    assert principal.community_id is not None
    return await communities.time_zone_of(db, principal.community_id)
