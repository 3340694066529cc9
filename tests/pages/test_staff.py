"""The coordinator's pages, in process: who may see them, CSRF, hostile forms, the credit batch's
confirmation acting once, and sign-in cards."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from tests.client import Api
from tests.pages.helpers import PIN, csrf_of, resident_with_pin
from tests.pages.staff_helpers import enter, member_no, office, with_pin
from timebank.app import create_app
from timebank.config import Settings

EN = {"Accept-Language": "en"}
ZH = {"Accept-Language": "zh-CN"}
ZERO = "00000000-0000-0000-0000-000000000000"
STAFF_GETS = [
    "/staff",
    "/staff/members",
    "/staff/members/new",
    "/staff/credit",
    "/staff/requests",
    f"/staff/members/{ZERO}",
    f"/staff/members/{ZERO}/history",
    f"/staff/members/{ZERO}/passbook.pdf",
    f"/staff/requests/{ZERO}",
    f"/staff/reverse/{ZERO}",
]
STAFF_POSTS = [
    "/staff/members/new",
    f"/staff/members/{ZERO}/edit",
    f"/staff/members/{ZERO}/pin",
    f"/staff/members/{ZERO}/relatives",
    f"/staff/members/{ZERO}/ask",
    f"/staff/members/{ZERO}/card",
    "/staff/credit/check",
    "/staff/credit/confirm",
    f"/staff/reverse/{ZERO}",
    f"/staff/requests/{ZERO}/assign",
    f"/staff/requests/{ZERO}/confirm",
    f"/staff/requests/{ZERO}/cancel",
]


async def test_staff_pages_send_strangers_to_sign_in_and_refuse_members(pages: AsyncTestClient[Any], api: Api) -> None:
    for path in STAFF_GETS:
        answer = await pages.get(path)
        assert (answer.status_code, answer.headers.get("location")) == (303, "/login"), path
    for path in STAFF_POSTS:
        answer = await pages.post(path, data={"csrf_token": "x"})
        assert (answer.status_code, answer.headers.get("location")) == (303, "/login"), path
    resident = await resident_with_pin(api, 60)  # a resident and volunteer, no coordinator
    csrf = await enter(pages, resident, **EN)
    for path in STAFF_GETS:
        answer = await pages.get(path, headers=EN)
        assert answer.status_code == 403, path
        assert "community office" in answer.text
    for path in STAFF_POSTS:
        assert (await pages.post(path, data={"csrf_token": csrf}, headers=EN)).status_code == 403, path


async def _a_member_with_work(api: Api) -> dict[str, Any]:
    """A community with a coordinator, a resident who asked for a service, and a credited volunteer."""
    place = await office(api)
    resident = await api.member(place.community, "resident", name="王奶奶")
    volunteer = await api.member(place.community, "volunteer", name="张志愿")
    credit = (await api.credit(volunteer, 60)).json()
    types = (await api.get(f"/v1/communities/{place.community.slug}/service-types", api.admin_token)).json()
    if not types["items"]:
        await api.post(
            f"/v1/communities/{place.community.slug}/service-types",
            api.admin_token,
            {"code": "meals", "name": "助餐", "default_minutes": 60},
        )
    at = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    asked = await api.post(
        "/v1/service-requests",
        api.admin_token,
        {"member_id": volunteer.id, "service_type": "meals", "scheduled_at": at, "funding": "own"},
    )
    assert asked.status_code == 201, asked.text
    return {
        "office": place,
        "resident": resident,
        "volunteer": volunteer,
        "transaction": credit["id"],
        "request": asked.json()["id"],
    }


async def test_a_coordinator_of_another_community_sees_404(pages: AsyncTestClient[Any], api: Api) -> None:
    theirs = await _a_member_with_work(api)
    mine = await office(api, "赵主任")
    csrf = await enter(pages, mine.coordinator, **EN)
    member, volunteer = theirs["resident"].id, theirs["volunteer"].id
    for path in (
        f"/staff/members/{member}",
        f"/staff/members/{member}/history",
        f"/staff/members/{member}/passbook.pdf",
        f"/staff/requests/{theirs['request']}",
        f"/staff/reverse/{theirs['transaction']}",
    ):
        answer = await pages.get(path, headers=EN)
        assert answer.status_code == 404, (path, answer.status_code)
        assert "王奶奶" not in answer.text
    form = {
        "csrf_token": csrf,
        "key": uuid.uuid4().hex,
        "pin": "135790",
        "reason": "x",
        "rating": "5",
        "relative_no": "000001",
        "relation": "child",
        "provider_no": "000001",
        "display_name": "x",
    }
    for path in (
        f"/staff/members/{member}/pin",
        f"/staff/members/{member}/edit",
        f"/staff/members/{member}/card",
        f"/staff/members/{member}/relatives",
        f"/staff/members/{member}/ask",
        f"/staff/reverse/{theirs['transaction']}",
        f"/staff/requests/{theirs['request']}/cancel",
        f"/staff/requests/{theirs['request']}/assign",
    ):
        assert (await pages.post(path, data=form, headers=EN)).status_code == 404, path
    # Their members are not found by number either, and nothing of theirs shows in my lists.
    listed = await pages.get("/staff/members", params={"q": "王"}, headers=EN)
    assert "王奶奶" not in listed.text
    assert "王奶奶" not in (await pages.get("/staff/requests", headers=EN)).text
    assert (await api.balance((await api.get(f"/v1/members/{volunteer}", api.admin_token)).json()["account_id"])) == 60


async def test_every_staff_form_needs_the_csrf_token(pages: AsyncTestClient[Any], api: Api) -> None:
    place = await office(api)
    await enter(pages, place.coordinator)
    for path in STAFF_POSTS:
        assert (await pages.post(path, data={"key": uuid.uuid4().hex})).status_code == 403, path
        forged = await pages.post(path, data={"csrf_token": "0" * 64, "key": uuid.uuid4().hex})
        assert forged.status_code == 403, path


HOSTILE = [
    "\x00",
    "a" * 5000,
    "' or 1=1 --",
    "<script>alert(1)</script>",
    "٣٣٣",
    "-1",
    "99999999999999999999999",
    "2026-02-30",
    "../../etc/passwd",
    "\ud7ff",
    "",
]


async def test_hostile_form_values_get_words_not_errors(pages: AsyncTestClient[Any], api: Api) -> None:
    work = await _a_member_with_work(api)
    place = work["office"]
    csrf = await enter(pages, place.coordinator, **EN)
    member, request = work["resident"].id, work["request"]
    targets = {
        "/staff/members/new": ("display_name", "grid", "phone", "birth_date", "roles"),
        f"/staff/members/{member}/edit": ("display_name", "phone", "birth_date", "reason", "roles"),
        f"/staff/members/{member}/pin": ("pin", "key"),
        f"/staff/members/{member}/relatives": ("relative_no", "relation", "key"),
        f"/staff/members/{member}/ask": ("service_type", "day", "time", "minutes", "description"),
        "/staff/credit/check": ("numbers", "service_date", "minutes", "description"),
        "/staff/credit/confirm": ("member_id", "service_date", "minutes", "key"),
        f"/staff/reverse/{work['transaction']}": ("reason", "key"),
        f"/staff/requests/{request}/assign": ("provider_no", "key"),
        f"/staff/requests/{request}/confirm": ("rating", "minutes", "comment"),
    }
    base = {
        "csrf_token": csrf,
        "display_name": "陈",
        "roles": "resident",
        "reason": "fix",
        "pin": "12345",
        "relative_no": "000001",
        "relation": "child",
        "service_type": "meals",
        "day": "2026-13-01",
        "time": "09:00",
        "numbers": "000001",
        "service_date": "2026-01-01",
        "minutes": "60",
        "rating": "9",
        "provider_no": "nobody",
    }
    for path, fields in targets.items():
        for field in fields:
            for value in HOSTILE:
                form = base | {"key": uuid.uuid4().hex} | {field: value}
                answer = await pages.post(path, data=form, headers=EN)
                assert answer.status_code < 500, (path, field, value, answer.status_code)
                assert "<script>alert" not in answer.text
                if answer.status_code in (400, 422):
                    assert 'class="problem"' in answer.text, (path, field, value)
    for query in ("?status=%00", "?status=x&grid=%ff&service_type=../&member=" + "9" * 500, "?member=abc"):
        assert (await pages.get("/staff/requests" + query)).status_code == 200, query
    assert (await pages.get("/staff/members?q=%00" + "x" * 500)).status_code == 200
    # No five-digit or hostile PIN was taken.
    got = (await api.get(f"/v1/members/{member}", api.admin_token)).json()
    assert got["has_pin"] is False


async def _check_credit(
    pages: AsyncTestClient[Any], csrf: str, numbers: list[str], minutes: int, headers: dict[str, str] = ZH
) -> str:
    form = {
        "csrf_token": csrf,
        "numbers": "\n".join(numbers),
        "service_date": "2026-11-30",
        "minutes": str(minutes),
        "description": "重阳节活动",
    }
    checked = await pages.post("/staff/credit/check", data=form, headers=headers)
    assert checked.status_code == 200, checked.text
    return checked.text


def _confirm_form(html: str) -> dict[str, list[str]]:
    """The confirmation form's fields as the browser sends them (member_id repeated)."""
    action = html.index('action="/staff/credit/confirm"')
    form = html[action : html.index("</form>", action)]
    fields: dict[str, list[str]] = {}
    for name, value in re.findall(r'name="([a-z_]+)" value="([^"]*)"', form):
        fields.setdefault(name, []).append(value)
    return fields


async def test_a_resubmitted_activity_confirmation_credits_once(pages: AsyncTestClient[Any], api: Api) -> None:
    place = await office(api)
    volunteers = [await api.member(place.community, "volunteer", name=f"志愿者{i}") for i in range(3)]
    csrf = await enter(pages, place.coordinator, **ZH)
    checked = await _check_credit(pages, csrf, [await member_no(api, v) for v in volunteers], 90)
    assert "志愿者2" in checked
    assert "4 小时 30 分钟" in checked  # the total, in words
    fields = _confirm_form(checked)
    first = await pages.post("/staff/credit/confirm", data=fields, headers=ZH)
    assert first.status_code == 201, first.text
    again = await pages.post("/staff/credit/confirm", data=fields, headers=ZH)
    assert again.status_code == 200
    assert "已为 3 位志愿者各记入 1 小时 30 分钟" in re.sub(r"<[^>]+>", "", again.text)
    for volunteer in volunteers:
        assert await api.balance(volunteer.account_id) == 90


async def test_a_failing_activity_item_is_named_and_nothing_moves(pages: AsyncTestClient[Any], api: Api) -> None:
    place = await office(api)
    volunteer = await api.member(place.community, "volunteer", name="刘志愿")
    resident = await api.member(place.community, "resident", name="孙居民")
    csrf = await enter(pages, place.coordinator, **EN)
    checked = await _check_credit(pages, csrf, [await member_no(api, volunteer), await member_no(api, resident)], 60)
    failed = await pages.post("/staff/credit/confirm", data=_confirm_form(checked), headers=EN)
    assert failed.status_code == 422
    assert re.search(r"孙居民</span>: This member is not a volunteer", failed.text), failed.text
    assert await api.balance(volunteer.account_id) == 0
    unknown = await pages.post(
        "/staff/credit/check",
        data={
            "csrf_token": csrf,
            "numbers": "999999 " + await member_no(api, volunteer),
            "service_date": "2026-11-30",
            "minutes": "60",
        },
        headers=EN,
    )
    assert unknown.status_code == 422
    assert "999999" in unknown.text
    assert "No member of your community" in unknown.text


async def test_sign_in_cards_are_stored_hashed_and_replaced_by_a_new_one(
    pages: AsyncTestClient[Any], api: Api, owner: asyncpg.Connection, capsys: pytest.CaptureFixture[str]
) -> None:
    place = await office(api)
    member = await with_pin(api, place.community, await api.member(place.community, "resident", name="吴爷爷"))
    csrf = await enter(pages, place.coordinator, **EN)
    cards = []
    for _ in range(2):
        printed = await pages.post(f"/staff/members/{member.member.id}/card", data={"csrf_token": csrf}, headers=EN)
        assert printed.status_code == 200, printed.text
        assert "<svg" in printed.text
        found = re.search(r'id="card-url">[^<]*/login/card/([A-Za-z0-9_-]{40,})<', printed.text)
        assert found, printed.text
        cards.append(found.group(1))
    old, new = cards
    stored = await owner.fetch(
        "select secret_hash from sign_in_cards where member_id = $1", uuid.UUID(member.member.id)
    )
    assert [bytes(r["secret_hash"]) for r in stored] == [hashlib.sha256(new.encode()).digest()]
    leaked = await owner.fetchval("select count(*) from audit_events where details::text like '%' || $1 || '%'", new)
    assert leaked == 0
    pages.cookies.clear()
    assert (await pages.get(f"/login/card/{old}", headers=EN)).status_code == 404
    opened = await pages.get(f"/login/card/{new}", headers=EN)
    assert opened.status_code == 200
    assert "吴爷爷" in opened.text
    wrong = await pages.post(f"/login/card/{new}", data={"csrf_token": csrf_of(opened.text), "pin": "000000"})
    assert wrong.status_code == 401
    assert "tb_session" not in pages.cookies
    old_try = await pages.post(f"/login/card/{old}", data={"csrf_token": csrf_of(opened.text), "pin": PIN})
    assert old_try.status_code == 404
    assert (await pages.post(f"/login/card/{new}", data={"pin": PIN})).status_code == 403  # no CSRF token
    signed = await pages.post(f"/login/card/{new}", data={"csrf_token": csrf_of(opened.text), "pin": PIN})
    assert (signed.status_code, signed.headers["location"]) == (303, "/")
    me = await pages.get("/me", headers=EN)
    assert "吴爷爷" in me.text
    for path in ("/login/card/" + "x" * 500, "/login/card/%00", "/login/card/..%2F"):
        assert (await pages.get(path)).status_code in (404,), path
    logged = capsys.readouterr()
    assert "/login/card/{secret}" in logged.out + logged.err
    assert new not in logged.out + logged.err, "a card's secret was written to the log"


async def test_every_word_on_the_staff_pages_is_translated(pages: AsyncTestClient[Any], api: Api) -> None:
    from tests.pages.test_catalog import untranslated  # noqa: PLC0415 - the one checker of the catalog test

    work = await _a_member_with_work(api)
    place, member = work["office"], work["resident"].id
    for language, headers in (("zh", ZH), ("en", EN)):
        csrf = await enter(pages, place.coordinator, **headers)
        drawn = {
            path: (await pages.get(path, headers=headers)).text
            for path in (
                "/staff",
                "/staff/members",
                "/staff/members/new",
                "/staff/credit",
                "/staff/requests",
                f"/staff/members/{member}",
                f"/staff/members/{member}/history",
                f"/staff/requests/{work['request']}",
                f"/staff/reverse/{work['transaction']}",
                f"/staff/members/{ZERO}",
            )
        }
        volunteer_no = await member_no(api, work["volunteer"])
        checked = await _check_credit(pages, csrf, [volunteer_no], 30, headers)
        drawn["credit check"] = checked
        drawn["credit done"] = (
            await pages.post("/staff/credit/confirm", data=_confirm_form(checked), headers=headers)
        ).text
        drawn["credit unknown"] = (
            await pages.post(
                "/staff/credit/check",
                headers=headers,
                data={"csrf_token": csrf, "numbers": "999999", "service_date": "2026-11-30", "minutes": "30"},
            )
        ).text
        drawn["pin refused"] = (
            await pages.post(
                f"/staff/members/{member}/pin",
                headers=headers,
                data={"csrf_token": csrf, "key": uuid.uuid4().hex, "pin": "1"},
            )
        ).text
        card = await pages.post(f"/staff/members/{member}/card", data={"csrf_token": csrf}, headers=headers)
        drawn["card"] = card.text
        secret = re.search(r"/login/card/([A-Za-z0-9_-]+)<", card.text)
        assert secret
        pages.cookies.clear()
        drawn["card sign-in"] = (await pages.get(f"/login/card/{secret.group(1)}", headers=headers)).text
        drawn["card unknown"] = (await pages.get("/login/card/nothing", headers=headers)).text
        found = {name: words for name, html in drawn.items() if (words := untranslated(html, language))}
        assert found == {}, f"{language}: words not from the catalog"


async def test_a_coordinator_assigns_confirms_and_cancels_on_behalf(pages: AsyncTestClient[Any], api: Api) -> None:
    work = await _a_member_with_work(api)
    place, request = work["office"], work["request"]
    helper = await api.member(place.community, "volunteer", name="周帮忙")
    csrf = await enter(pages, place.coordinator, **EN)
    listed = await pages.get("/staff/requests", params={"status": "open", "service_type": "meals"}, headers=EN)
    assert f"/staff/requests/{request}" in listed.text
    drawn = await pages.get(f"/staff/requests/{request}", headers=EN)
    assert "周帮忙" in drawn.text  # offered by name in the list of volunteers
    form = {"csrf_token": csrf, "key": re.findall(r'name="key" value="([0-9a-f]+)"', drawn.text)[0],
            "provider_no": await member_no(api, helper)}  # fmt: skip
    assigned = await pages.post(f"/staff/requests/{request}/assign", data=form, headers=EN)
    assert (assigned.status_code, assigned.headers["location"]) == (303, f"/staff/requests/{request}?done=assign")
    for step, body in (("check-in", None), ("report", {"minutes": 45})):
        answer = await api.post(f"/v1/service-requests/{request}/{step}", helper.token, body)
        assert answer.status_code == 200, answer.text
    reported = await pages.get(f"/staff/requests/{request}", headers=EN)
    confirm_key = re.search(r'action="[^"]*/confirm".*?name="key" value="([0-9a-f]+)"', reported.text, re.S)
    assert confirm_key
    confirm = {"csrf_token": csrf, "key": confirm_key.group(1), "rating": "5", "comment": "很好"}
    for _ in range(2):  # sent twice: the hours move once
        done = await pages.post(f"/staff/requests/{request}/confirm", data=confirm, headers=EN)
        assert done.status_code == 303, done.text
    assert await api.balance(helper.account_id) == 45
    assert await api.balance(work["volunteer"].account_id) == 15
    other = await api.post("/v1/service-requests", api.admin_token, {
        "member_id": work["volunteer"].id, "service_type": "meals", "funding": "own", "minutes": 15,
        "scheduled_at": (datetime.now(UTC) + timedelta(days=3)).isoformat()})  # fmt: skip
    assert other.status_code == 201, other.text
    other_id = other.json()["id"]
    cancel = {"csrf_token": csrf, "key": uuid.uuid4().hex, "reason": "家属已安排"}
    cancelled = await pages.post(f"/staff/requests/{other_id}/cancel", data=cancel, headers=EN)
    assert cancelled.status_code == 303
    got = (await api.get(f"/v1/service-requests/{other_id}", api.admin_token)).json()
    assert (got["status"], got["cancel_reason"]) == ("cancelled", "家属已安排")


async def test_a_coordinator_edits_links_a_relative_and_asks_on_behalf(pages: AsyncTestClient[Any], api: Api) -> None:
    work = await _a_member_with_work(api)
    place, resident, volunteer = work["office"], work["resident"], work["volunteer"]
    csrf = await enter(pages, place.coordinator, **EN)
    drawn = await pages.get(f"/staff/members/{resident.id}", headers=EN)
    edit = {"csrf_token": csrf, "key": uuid.uuid4().hex, "display_name": "王淑芬", "roles": "resident", "grid": "7"}
    no_reason = await pages.post(f"/staff/members/{resident.id}/edit", data=edit, headers=EN)
    assert no_reason.status_code == 422
    assert 'id="edit-reason" name="reason" type="text" maxlength="500" required value="" aria-invalid="true"' in (
        no_reason.text
    )
    edited = await pages.post(f"/staff/members/{resident.id}/edit", data=edit | {"reason": "改名"}, headers=EN)
    assert edited.status_code == 303
    got = (await api.get(f"/v1/members/{resident.id}", api.admin_token)).json()
    assert (got["display_name"], got["grid"]) == ("王淑芬", "7")
    relative = {"csrf_token": csrf, "key": uuid.uuid4().hex, "relative_no": await member_no(api, volunteer),
                "relation": "child"}  # fmt: skip
    assert (await pages.post(f"/staff/members/{resident.id}/relatives", data=relative)).status_code == 303
    kin = (await api.get(f"/v1/members/{resident.id}/relatives", api.admin_token)).json()["items"]
    assert [(k["member_id"], k["relation"]) for k in kin] == [(volunteer.id, "child")]
    assert "张志愿" in (await pages.get(f"/staff/members/{resident.id}", headers=EN)).text
    ask = {"csrf_token": csrf, "key": re.findall(r'name="key" value="([0-9a-f]+)"', drawn.text)[-1],
           "service_type": "meals", "day": (datetime.now(UTC) + timedelta(days=5)).date().isoformat(),
           "time": "10:30", "funding": "community", "minutes": "", "description": "送到家门口"}  # fmt: skip
    for _ in range(2):  # the same form twice: one request
        asked = await pages.post(f"/staff/members/{resident.id}/ask", data=ask, headers=EN)
        assert asked.status_code == 303, asked.text
    listed = await api.get(f"/v1/communities/{place.community.slug}/service-requests", api.admin_token,
                           member_id=resident.id)  # fmt: skip
    items = listed.json()["items"]
    assert [(r["funding"], r["minutes"], r["description"]) for r in items] == [("community", 60, "送到家门口")]


async def test_todays_work_lists_what_waits_with_links_to_where_it_is_handled(
    pages: AsyncTestClient[Any], api: Api
) -> None:
    work = await _a_member_with_work(api)
    place, volunteer = work["office"], work["volunteer"]
    soon = (datetime.now(UTC) + timedelta(hours=20)).isoformat()
    assert (await api.credit(volunteer, 15)).status_code == 201
    held = await api.post("/v1/holds", api.admin_token, {"member_id": volunteer.id, "minutes": 15, "expires_at": soon})
    assert held.status_code == 201, held.text
    await enter(pages, place.coordinator, **EN)
    today = await pages.get("/staff", headers=EN)
    assert today.status_code == 200
    text = re.sub(r"<[^>]+>", "", today.text)
    assert "Requests to assign (1)" in text
    assert f'href="/staff/requests/{work["request"]}"' in today.text
    assert "Hours set aside that expire soon (1)" in text
    assert "张志愿 · 15 minutes" in text
    assert f'href="/staff/requests?member={await member_no(api, volunteer)}"' in today.text
    assert "No report is waiting." in text


async def test_the_passbook_prints_for_the_signed_in_coordinator(pages: AsyncTestClient[Any], api: Api) -> None:
    work = await _a_member_with_work(api)
    await enter(pages, work["office"].coordinator, **ZH)
    member = work["volunteer"]
    page = await pages.get(f"/staff/members/{member.id}", headers=ZH)
    assert f'href="/staff/members/{member.id}/passbook.pdf"' in page.text
    pdf = await pages.get(f"/staff/members/{member.id}/passbook.pdf")
    assert pdf.status_code == 200, pdf.text[:300]
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["cache-control"] == "private, no-store"
    assert pdf.content.startswith(b"%PDF")


async def test_a_missing_font_is_said_in_words(settings: Settings, database: str, api: Api) -> None:
    work = await _a_member_with_work(api)
    no_font = msgspec.structs.replace(settings, pdf_font="/nonexistent/font.ttf")
    async with AsyncTestClient(app=create_app(no_font, database), raise_server_exceptions=False) as browser:
        browser.follow_redirects = False
        await enter(browser, work["office"].coordinator, **EN)
        answer = await browser.get(f"/staff/members/{work['volunteer'].id}/passbook.pdf", headers=EN)
        assert answer.status_code == 503
        assert "A font that writes Chinese is missing" in answer.text
