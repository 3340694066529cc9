"""Issue 11, item 7: nothing leaks and nothing breaks, on every page the app has (its route table).

1. Every page (GET, and POST of every form with a valid CSRF token) as every role of ANOTHER
   community: never this community's data; a page whose path names this community's record answers
   404, 403 or a redirect to sign-in (or home).
2. Every page with hostile query strings and form values: no 5xx, no redirect off the service, and
   no hostile HTML reflected unescaped.

Pages added later are walked by themselves. A page this file does not know how to walk (a path
parameter without a value in path_values, a method other than GET or POST) fails both tests.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from litestar.testing import AsyncTestClient

from tests.client import Api, Community
from tests.pages.forms import PageRoute, fill, forms_of, page_routes
from tests.pages.helpers import Resident, csrf_of
from tests.pages.people import ROLES, person, signed_in
from timebank.pages import session

pytestmark = pytest.mark.slow  # started first (tests/conftest.py), so the workers finish together


@dataclass
class Theirs:
    """This community: what must never show to anyone of another."""

    community: Community
    members: list[Resident]
    markers: list[str]


async def _theirs(api: Api) -> Theirs:
    community = await api.community()
    tag = uuid.uuid4().hex[:8]
    members = [await person(api, community, role, name=f"甲{role}{tag}", grid="甲区") for role in ROLES]
    credited = await api.credit(members[1].member, 90)
    assert credited.status_code == 201, credited.text
    markers = [f"甲{role}{tag}" for role in ROLES] + [f"社区 {community.slug}", "甲区"]
    return Theirs(community, members, markers)


def path_values(theirs: Theirs) -> dict[str, Any]:
    """A value for each path parameter a page may have, naming THIS community's records."""
    member = theirs.members[0].member
    return {
        "member_id": member.id,
        "account_id": member.account_id,
        "secret": "x" * 43,
        "request_id": uuid.uuid4(),
        "batch_id": uuid.uuid4(),
        "transaction_id": uuid.uuid4(),
        "step": "assign",
    }


def _unknown_parameters(routes: list[PageRoute], known: dict[str, Any]) -> list[str]:
    """What this file cannot walk: a path parameter without a value, a method other than GET and POST."""
    unknown = [f"{r.method} {r.path}: {p}" for r in routes for p in r.parameters if p not in known]
    return unknown + [f"{r.method} {r.path}" for r in routes if r.method not in ("GET", "POST")]


QUERY_NAMES = ("community", "month", "action", "actor", "from", "to", "before", "next", "page", "status", "q", "token")
HOSTILE = [
    "x" * 5000,
    "a\x00b",
    "\u202e\u200fمرحبا\u202c",
    "2026-13",
    "-1",
    "-99999999999999999999",
    "' or 1=1; drop table members; --",
    '"><script>alert(1)</script>',
    "<img src=x onerror=alert(1)>",
    "//evil.example/",
    "9" * 30,
    "",
]
RAW_HTML = ("<script>alert(1)", "<img src=x")


def _is_redirect_home_or_login(answer: Any) -> bool:
    return answer.status_code in (302, 303, 307) and answer.headers["location"].split("?")[0] in ("/login", "/")


def _safe_location(answer: Any) -> bool:
    location = answer.headers.get("location")
    return location is None or (location.startswith("/") and not location.startswith("//") and "\\" not in location)


async def _ensure_signed_in(client: AsyncTestClient[Any], someone: Resident | None) -> None:
    if someone is None:
        client.cookies.clear()
    elif session.session_token(_Cookies(client)) is None or (await client.get("/me")).headers.get("location") == (
        "/login"
    ):
        await signed_in(client, someone)


class _Cookies:
    """Just enough of a connection for session.session_token to read the client's cookies."""

    def __init__(self, client: AsyncTestClient[Any]) -> None:
        self.cookies = {name: client.cookies.get(name) for name in (session.SESSION_COOKIE,)}


def _csrf(client: AsyncTestClient[Any], html: str | None) -> str:
    if html and 'name="csrf_token"' in html:
        return csrf_of(html)
    token = client.cookies.get(session.SESSION_COOKIE) or client.cookies.get(session.PRE_SESSION_COOKIE) or ""
    return session.csrf_for(token)


async def test_every_page_as_every_role_of_another_community_shows_nothing_of_this_one(
    pages: AsyncTestClient[Any], api: Api
) -> None:
    routes = page_routes(pages.app)
    theirs = await _theirs(api)
    known = path_values(theirs)
    assert _unknown_parameters(routes, known) == [], "teach this file to walk these (path_values, methods)"
    assert {"/", "/login", "/me", "/staff/reports", "/audit"} <= {r.path for r in routes}
    other = await api.community()
    tag = uuid.uuid4().hex[:6]
    outsiders = [await person(api, other, role, name=f"乙{role}{tag}") for role in ROLES]
    walked: set[tuple[str, str]] = set()
    for outsider in outsiders:
        for route in routes:
            await _ensure_signed_in(pages, outsider)
            path = fill(route.path, known)
            if route.method != "GET":
                continue
            for query in ({}, {"community": theirs.community.slug}):
                answer = await pages.get(path, params=query)
                walked.add((route.method, route.path))
                _assert_nothing_of(theirs, answer, route, query)
                if route.parameters:
                    assert answer.status_code in (403, 404) or _is_redirect_home_or_login(answer), (
                        route.path, query, answer.status_code)  # fmt: skip
                for form in forms_of(answer.text, path) if answer.status_code < 300 else []:
                    if form.method != "post":
                        continue
                    await _ensure_signed_in(pages, outsider)
                    sent = await pages.post(form.action, data=form.fields)
                    walked.add(("POST", _route_of(routes, form.action)))
                    _assert_nothing_of(theirs, sent, route, form.fields)
        for route in routes:  # POST routes no drawn form led to: a valid CSRF token and nothing else
            if route.method == "POST" and ("POST", route.path) not in walked:
                await _ensure_signed_in(pages, outsider)
                sent = await pages.post(fill(route.path, known), data={"csrf_token": _csrf(pages, None)})
                _assert_nothing_of(theirs, sent, route, {})
    assert {(r.method, r.path) for r in routes} <= walked | {(r.method, r.path) for r in routes if r.method == "POST"}


def _route_of(routes: list[PageRoute], action: str) -> str:
    path = action.split("?", maxsplit=1)[0]
    for route in routes:
        if route.path == path:
            return route.path
    return path


def _assert_nothing_of(theirs: Theirs, answer: Any, route: PageRoute, sent: dict[str, Any]) -> None:
    assert answer.status_code < 500, (route, sent, answer.status_code)
    body = answer.content.decode("utf-8", "replace")
    leaked = [marker for marker in theirs.markers if marker in body]
    assert leaked == [], (route.method, route.path, sent, leaked)


async def test_every_page_with_hostile_queries_and_forms_never_breaks_or_reflects_html(
    pages: AsyncTestClient[Any], api: Api
) -> None:
    routes = page_routes(pages.app)
    theirs = await _theirs(api)
    known = path_values(theirs)
    assert _unknown_parameters(routes, known) == [], "teach this file to walk these (path_values, methods)"
    readers: list[Resident | None] = [None, *theirs.members]
    for reader in readers:
        for route in routes:
            if route.method == "GET":
                for value in HOSTILE:
                    await _hostile_get(pages, reader, route, known, value)
        for route in routes:
            if route.method == "POST":
                for value in HOSTILE[:4]:
                    await _ensure_signed_in(pages, reader)
                    fields = dict.fromkeys(("community", "member_no", "pin", "token", "minutes", "to"), value)
                    sent = await pages.post(fill(route.path, known), data=fields | {"csrf_token": _csrf(pages, None)})
                    _assert_sound(sent, route, value)


async def _hostile_get(
    pages: AsyncTestClient[Any], reader: Resident | None, route: PageRoute, known: dict[str, Any], value: str
) -> None:
    """The page with `value` in its query (and its text path parameters), then each form it draws
    sent with `value` in every field (and the page's own CSRF token)."""
    await _ensure_signed_in(pages, reader)
    # A text path parameter gets the hostile value too, percent-encoded as a browser sends it.
    hostile_path = {
        name: quote(value, safe="") if f"{{{name}:str}}" in route.path else known[name] for name in route.parameters
    }
    paths = {fill(route.path, known), fill(route.path, hostile_path) if value else ""} - {""}
    # The community alone (a community not found answers before anything else is read), then the rest at once.
    queries = [{"community": value}, {name: value for name in QUERY_NAMES if name != "community"}]
    for path, query in ((p, q) for p in paths for q in queries):
        answer = await pages.get(path, params=query)
        _assert_sound(answer, route, value)
        if answer.status_code >= 300:
            continue
        for form in forms_of(answer.text, path):
            if form.action == "/logout":
                continue  # signing out is walked with the POST routes
            fields = {name: (v if name == "csrf_token" else value) for name, v in form.fields.items()}
            if form.method == "post":
                sent = await pages.post(form.action, data=fields)
            else:
                sent = await pages.get(form.action, params=fields)
            _assert_sound(sent, route, value)
            await _ensure_signed_in(pages, reader)


def _assert_sound(answer: Any, route: PageRoute, value: str) -> None:
    assert answer.status_code < 500, (route, value[:40], answer.status_code)
    assert _safe_location(answer), (route, value[:40], answer.headers.get("location"))
    body = answer.content.decode("utf-8", "replace")
    assert not any(raw in body for raw in RAW_HTML), (route, value[:40], "hostile HTML reflected unescaped")


def test_a_page_the_walk_cannot_walk_fails_it() -> None:
    known = {"member_id": "m"}
    routes = [
        PageRoute("/staff/members/{member_id:uuid}", "GET", ("member_id",)),
        PageRoute("/staff/cards/{card_id:uuid}", "GET", ("card_id",)),
        PageRoute("/me", "PUT", ()),
    ]
    assert _unknown_parameters(routes, known) == ["GET /staff/cards/{card_id:uuid}: card_id", "PUT /me"]
    assert fill(routes[0].path, known) == "/staff/members/m"
