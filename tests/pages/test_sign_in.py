"""Signing in on the pages, in process: the PIN, the lock after five wrong ones, CSRF, cookies, /me, /history."""

from __future__ import annotations

import re
import uuid
from typing import Any

import asyncpg
import msgspec
from litestar.testing import AsyncTestClient

from tests.client import Api
from tests.pages.helpers import PIN, csrf_of, resident_with_pin, sign_in
from timebank.app import create_app
from timebank.auth.revocations import RevocationListener
from timebank.auth.throttle import TokenCache
from timebank.config import Settings
from timebank.db import Database
from timebank.http.context import hash_token
from timebank.pages.signin import sign_out

ZH = {"Accept-Language": "zh-CN"}
EN = {"Accept-Language": "en-GB,en;q=0.9"}


async def test_a_resident_signs_in_and_sees_the_balance_in_words(pages: AsyncTestClient[Any], api: Api) -> None:
    resident = await resident_with_pin(api, 750)
    signed = await sign_in(pages, resident, **ZH)
    assert signed.status_code == 303
    assert signed.headers["location"] == "/"
    cookie = signed.headers.get_list("set-cookie")
    session = next(c for c in cookie if c.startswith("tb_session="))
    assert "HttpOnly" in session
    assert "SameSite=lax" in session.replace("Lax", "lax")
    assert "Path=/" in session
    home = await pages.get("/", headers=ZH)
    assert home.status_code == 303
    assert home.headers["location"] == "/me"
    me = await pages.get("/me", headers=ZH)
    assert me.status_code == 200
    assert '<data id="balance" value="750">12 小时 30 分钟</data>' in me.text
    assert '<html lang="zh-CN">' in me.text
    english = await pages.get("/me", headers=EN)
    assert '<data id="balance" value="750">12 hours 30 minutes</data>' in english.text
    history = await pages.get("/history", headers=ZH)
    assert history.status_code == 200
    assert history.text.count('class="plus"') == 1


async def test_the_visible_switch_outranks_accept_language(pages: AsyncTestClient[Any]) -> None:
    switched = await pages.get("/language", params={"to": "en", "next": "/login"}, headers=ZH)
    assert switched.status_code == 303
    assert switched.headers["location"] == "/login"
    assert 'lang="en"' in (await pages.get("/login", headers=ZH)).text
    away = await pages.get("/language", params={"to": "zh", "next": "//evil.example/"})
    assert away.headers["location"] == "/"
    pages.cookies.clear()
    assert '<html lang="zh-CN">' in (await pages.get("/login")).text  # Chinese by default


async def test_five_wrong_pins_lock_sign_in_and_say_so(
    pages: AsyncTestClient[Any], api: Api, owner: asyncpg.Connection
) -> None:
    resident = await resident_with_pin(api, 60)
    for attempt in range(4):
        wrong = await sign_in(pages, resident, pin=f"00000{attempt}", **EN)
        assert wrong.status_code == 401
        assert "not right" in wrong.text
    fifth = await sign_in(pages, resident, pin="000009", **EN)
    assert fifth.status_code == 429
    assert re.search(r"locked for 1[45] minutes", fifth.text), fifth.text
    right = await sign_in(pages, resident, pin=PIN, **ZH)  # the right PIN waits out the lock too
    assert right.status_code == 429
    assert "锁定" in right.text
    assert "tb_session" not in pages.cookies
    actions = await owner.fetch(
        "select action from audit_events where subject_id = $1::uuid and action like 'member.sign_in%' ",
        resident.member.id,
    )
    assert len(actions) == 5


async def test_a_post_without_the_csrf_token_is_refused(pages: AsyncTestClient[Any], api: Api) -> None:
    resident = await resident_with_pin(api, 60)
    await pages.get("/login")
    form = {"community": resident.community.slug, "member_no": resident.member_no, "pin": PIN}
    refused = await pages.post("/login", data=form)
    assert refused.status_code == 403
    assert "tb_session" not in pages.cookies
    forged = await pages.post("/login", data=form | {"csrf_token": "0" * 64})
    assert forged.status_code == 403
    assert (await sign_in(pages, resident)).status_code == 303
    no_token = await pages.post("/logout", data={})
    assert no_token.status_code == 403
    still = await pages.get("/me")
    assert still.status_code == 200
    out = await pages.post("/logout", data={"csrf_token": csrf_of(still.text)})
    assert out.status_code == 303
    assert out.headers["location"] == "/login"
    assert (await pages.get("/me")).status_code == 303


async def test_signing_out_revokes_the_session(pages: AsyncTestClient[Any], api: Api) -> None:
    resident = await resident_with_pin(api, 60)
    await sign_in(pages, resident)
    stolen = pages.cookies["tb_session"]
    page = await pages.get("/me")
    await pages.post("/logout", data={"csrf_token": csrf_of(page.text)})
    pages.cookies.set("tb_session", stolen)
    replayed = await pages.get("/me")
    assert replayed.status_code == 303
    assert replayed.headers["location"] == "/login"


async def test_signing_out_answers_after_this_process_forgot_the_session(
    pages: AsyncTestClient[Any], api: Api, settings: Settings, database: str
) -> None:
    """The token cache of a process whose listener has not heard the revocation yet (here: never
    will) must still not hold the session once sign-out returns; the replay above relies on it."""
    resident = await resident_with_pin(api, 60)
    await sign_in(pages, resident)
    token = pages.cookies["tb_session"]
    digest = hash_token(token)
    db = await Database.connect(settings, database)  # this loop's own; the app's runs in another
    row = await db.fetchrow("select * from authenticate_token($1)", digest)
    cache = TokenCache(ttl_seconds=3600, max_entries=10)
    cache.put(digest, "the signed-in principal", row["token_id"])
    deaf = RevocationListener(cache, connect=asyncpg.connect)  # never started: hears nothing
    await sign_out(db, deaf, "test-" + uuid.uuid4().hex, token)
    assert cache.get(digest) is None
    assert await db.fetchrow("select * from authenticate_token($1)", digest) is None
    await db.close()


async def test_pages_need_a_session(pages: AsyncTestClient[Any]) -> None:
    for path in ("/", "/me", "/history", "/history?before=abc"):
        response = await pages.get(path)
        assert (response.status_code, response.headers.get("location")) == (303, "/login"), path
    pages.cookies.set("tb_session", "tb_" + "x" * 40)
    forged = await pages.get("/me")
    assert forged.status_code == 303


async def test_wrong_pins_are_also_throttled_per_address(
    settings: Settings, database: str, admin_token: str, api: Api
) -> None:
    """Guessing across many members from one device: after the address's allowance, every try is
    refused in words, even a right PIN, and no member's own counter moves any further."""
    residents = [await resident_with_pin(api, 15) for _ in range(2)]
    limited = msgspec.structs.replace(settings, auth_failures_per_minute=3)
    async with AsyncTestClient(app=create_app(limited, database), raise_server_exceptions=False) as browser:
        browser.follow_redirects = False
        answers = [(await sign_in(browser, residents[i % 2], pin="000000", **EN)).status_code for i in range(3)]
        assert answers == [401, 401, 401]
        busy = await sign_in(browser, residents[1], **EN)
        assert busy.status_code == 429
        assert "from this device" in busy.text


async def test_hostile_forms_and_query_strings_get_words_not_errors(pages: AsyncTestClient[Any], api: Api) -> None:
    resident = await resident_with_pin(api, 15)
    page = await pages.get("/login")
    csrf = csrf_of(page.text)
    hostile = ["\x00", "a" * 5000, "' or 1=1 --", "../../etc/passwd", "<script>alert(1)</script>", "٣٣٣", "\ud7ff"]
    for value in hostile:
        for field in ("community", "member_no", "pin"):
            form = {"csrf_token": csrf, "community": resident.community.slug, "member_no": resident.member_no,
                    "pin": "000000"} | {field: value}  # fmt: skip
            answer = await pages.post("/login", data=form)
            assert answer.status_code in (400, 401, 429), (field, value, answer.status_code)
            assert "<script>alert" not in answer.text
    odd = await pages.post(
        "/login", content=b"\xff\xfe=\x00", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert odd.status_code < 500
    for path in ("/history?before=-1", "/history?before=99999999999999999999999", "/language?to=xx&next=%00",
                 "/language?next=http://evil.example/", "/login?token", "/me?x=%ff"):  # fmt: skip
        assert (await pages.get(path)).status_code < 500, path
