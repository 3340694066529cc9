"""The pages' routes: sign-in, sign-out, each person's home, the member's balance and statement.

Handlers read forms themselves (a page answers a bad form with words on the page, never a JSON
problem) and call the same service functions as the API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Request, Response, Router, get, post
from litestar.datastructures import State
from litestar.response import Redirect
from litestar.static_files import create_static_files_router

from timebank.http.context import request_id_of
from timebank.ledger import service as ledger
from timebank.pages import session
from timebank.pages.common import (
    community_time_zone,
    database_of,
    form_field,
    member_context,
    refused,
    render,
    set_language,
    signed_in_principal,
    to_login,
)
from timebank.pages.i18n import LANGUAGE_COOKIE
from timebank.pages.login import form_page, sent_form, signed_in, try_pin
from timebank.pages.member_routes import MEMBER_HANDLERS
from timebank.pages.oversight import OVERSIGHT_PAGES, home_of
from timebank.pages.signin import sign_out
from timebank.pages.staff.routes import STAFF_ROUTES
from timebank.pages.token_signin import token_login_page
from timebank.pages.trouble import page_trouble
from timebank.pages.views import entry_view, request_view, upcoming_requests

HISTORY_PAGE_SIZE = 20


@get("/login", include_in_schema=False)
async def login_page(request: Request[Any, Any, State]) -> Response[Any]:
    if "token" in request.query_params:
        return token_login_page(request)
    return form_page(request, "login.html", form={}, error=None, locked_minutes=None)


@post("/login", include_in_schema=False, status_code=303)
async def login(request: Request[Any, Any, State]) -> Response[Any]:
    sent = await sent_form(request)
    if isinstance(sent, Response):
        return sent
    secret, form = sent
    values = {name: form_field(form, name) for name in ("community", "member_no", "pin")}
    attempt = await try_pin(request, values["community"], values["member_no"], values["pin"])
    if attempt.token is not None:
        return signed_in(request, attempt.token)
    form_values = {"community": values["community"], "member_no": values["member_no"]}
    return render(
        request, "login.html", attempt.status, csrf=session.csrf_for(secret), form=form_values, error=attempt.error,
        locked_minutes=attempt.wait_minutes,
    )  # fmt: skip


@post("/logout", include_in_schema=False, status_code=303)
async def logout(request: Request[Any, Any, State]) -> Response[Any]:
    form = await request.form()
    token = session.session_token(request)
    if not session.csrf_ok(token, form.get(session.CSRF_FIELD)):
        return refused(request)
    assert token is not None
    await sign_out(database_of(request), request.app.state.revocations, request_id_of(request), token)
    return to_login(request)


@get("/", include_in_schema=False)
async def home(request: Request[Any, Any, State]) -> Response[Any]:
    principal = await signed_in_principal(request)
    if principal is None:
        return to_login(request)
    return Redirect(home_of(principal), status_code=303)


@get("/language", include_in_schema=False)
async def switch_language(request: Request[Any, Any, State]) -> Response[Any]:
    """The visible switch: remember the language in a cookie and go back to the page."""
    to = request.query_params.get("to")
    back = request.query_params.get("next") or "/"
    if not back.startswith("/") or back.startswith("//") or "\\" in back or len(back) > 500:
        back = "/"
    response: Response[Any] = Redirect(back, status_code=303)
    if to in ("zh", "en"):
        response.set_cookie(session.cookie(request, LANGUAGE_COOKIE, to, max_age=365 * 24 * 3600))
    return response


@get("/me", include_in_schema=False)
async def me(request: Request[Any, Any, State]) -> Response[Any]:
    found = await member_context(request)
    if found is None:
        return to_login(request)
    principal, member, csrf = found
    db = database_of(request)
    account = await ledger.get_account(db, principal, member.account_id)
    time_zone = await community_time_zone(db, principal)
    upcoming = [request_view(r, time_zone) for r in await upcoming_requests(db, principal)]
    return render(request, "me.html", member=member, account=account, upcoming=upcoming, csrf=csrf, signed_in=True)


@get("/history", include_in_schema=False)
async def history(request: Request[Any, Any, State]) -> Response[Any]:
    found = await member_context(request)
    if found is None:
        return to_login(request)
    principal, member, csrf = found
    before_text = request.query_params.get("before") or ""
    before = int(before_text) if before_text.isdigit() and len(before_text) <= 18 else None
    db = database_of(request)
    time_zone = await community_time_zone(db, principal)
    entries, rows = await ledger.list_entries(db, principal, member.account_id, before, None, None, HISTORY_PAGE_SIZE)
    older = rows[HISTORY_PAGE_SIZE - 1]["account_version"] if len(rows) > HISTORY_PAGE_SIZE else None
    return render(
        request, "history.html", member=member, entries=[entry_view(e, time_zone) for e in entries], older=older,
        first_page=before is None, csrf=csrf, signed_in=True,
    )  # fmt: skip


STATIC_DIR = Path(__file__).parent / "static"

router = Router(
    path="/",
    route_handlers=[
        login_page,
        login,
        logout,
        home,
        switch_language,
        me,
        history,
        *MEMBER_HANDLERS,
        *STAFF_ROUTES,
        *OVERSIGHT_PAGES,
    ],
    before_request=set_language,
    exception_handlers={Exception: page_trouble},
    include_in_schema=False,
    tags=["pages"],
)
static_router = create_static_files_router(path="/static", directories=[STATIC_DIR], include_in_schema=False)
