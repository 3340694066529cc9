"""The member pages in process: /ask, /my-requests, /requests, /tasks, /gift. Each form acts
through the API's SQL operations once however often it is sent, refuses a missing CSRF token (403),
says what is wrong with a bad value in words (400), and finds no other community's request (404)."""

from __future__ import annotations

import re
import uuid
from datetime import date, timedelta
from typing import Any

from litestar.testing import AsyncTestClient

from tests.client import Api
from tests.pages.member_helpers import EN, ZH, as_person, balance_on, form_of, person, relate
from tests.pages.test_catalog import untranslated

TYPE = "meals"


async def _ask(pages: AsyncTestClient[Any], minutes: str = "60", **headers: str) -> str:
    """Ask for meals through the three steps; answers the result page."""
    chosen = await pages.get(f"/ask?type={TYPE}", headers=headers)
    assert chosen.status_code == 200
    day = re.search(r'name="day" type="date" required value="([0-9-]+)"', chosen.text)
    assert day
    review = await pages.post(
        "/ask", data=form_of(chosen.text, day=day.group(1), time="10:00", minutes=minutes), headers=headers
    )
    assert review.status_code == 200, review.text
    assert 'name="key"' in review.text
    done = await pages.post("/ask", data=form_of(review.text), headers=headers)
    assert done.status_code == 200, done.text
    return done.text


def _request_ids(html: str, action: str) -> list[str]:
    return re.findall(rf'action="/(?:requests|tasks|my-requests)/([0-9a-f-]{{36}})/{action}"', html)


async def test_ask_claim_check_in_report_confirm_moves_the_reported_minutes_once(
    pages: AsyncTestClient[Any], api: Api
) -> None:
    community = await api.community()
    resident = await person(api, community, "resident", "volunteer", name="周桂兰", minutes=300)
    volunteer = await person(api, community, "volunteer", name="王芳", minutes=30)
    await as_person(pages, resident)
    before_resident = balance_on((await pages.get("/me", headers=ZH)).text)
    done = await _ask(pages, **ZH)
    assert "已提交" in done
    assert 'id="result"' in done
    mine = await pages.get("/my-requests", headers=ZH)
    assert mine.text.count('href="/my-requests/') == 1

    await as_person(pages, volunteer)
    open_page = await pages.get("/requests", headers=ZH)
    [request_id] = _request_ids(open_page.text, "claim")
    claim_form = form_of(open_page.text)
    keyless = await pages.post(f"/requests/{request_id}/claim", data={"csrf_token": claim_form["csrf_token"]})
    assert keyless.status_code == 400  # a form the pages did not draw acts on nothing
    claimed = await pages.post(f"/requests/{request_id}/claim", data=claim_form, headers=ZH)
    assert claimed.status_code == 200
    assert "周桂兰" in claimed.text
    again = await pages.post(f"/requests/{request_id}/claim", data=claim_form, headers=ZH)  # a double click
    assert again.status_code == 200
    assert "周桂兰" in again.text
    tasks = await pages.get("/tasks", headers=ZH)
    assert _request_ids(tasks.text, "check-in") == [request_id]
    checked = await pages.post(f"/tasks/{request_id}/check-in", data=form_of(tasks.text), headers=ZH)
    assert checked.status_code == 200, checked.text
    tasks = await pages.get("/tasks", headers=ZH)
    report_form = {"csrf_token": form_of(tasks.text)["csrf_token"], "key": form_of(tasks.text)["key"]}
    bad = await pages.post(f"/tasks/{request_id}/report", data=report_form | {"minutes": "sixty"}, headers=EN)
    assert bad.status_code == 400
    assert "number of minutes" in bad.text
    reported = await pages.post(f"/tasks/{request_id}/report", data=report_form | {"minutes": "45"}, headers=ZH)
    assert reported.status_code == 200
    assert "45 分钟" in reported.text
    before_volunteer = balance_on((await pages.get("/me")).text)

    await as_person(pages, resident)
    detail = await pages.get(f"/my-requests/{request_id}", headers=EN)
    assert "Confirm the service" in detail.text
    unsaid = await pages.post(f"/my-requests/{request_id}/dispute", data=form_of(detail.text, reason=" "), headers=EN)
    assert unsaid.status_code == 400
    assert re.search(r'id="reason-problem">Please say in a few words why', unsaid.text)
    review = await pages.post(
        f"/my-requests/{request_id}/confirm",
        data={"csrf_token": form_of(detail.text)["csrf_token"], "rating": "5", "comment": "很好"}, headers=ZH,
    )  # fmt: skip
    assert review.status_code == 200
    assert "王芳" in review.text
    assert "45 分钟" in review.text
    assert balance_on((await pages.get("/me")).text) == before_resident  # nothing moved at the check step
    confirm = form_of(review.text)
    first = await pages.post(f"/my-requests/{request_id}/confirm", data=confirm, headers=ZH)
    second = await pages.post(f"/my-requests/{request_id}/confirm", data=confirm, headers=ZH)  # submitted twice
    assert first.status_code == second.status_code == 200
    assert "已付给" in first.text
    assert "王芳" in first.text
    assert "45 分钟" in first.text
    assert balance_on((await pages.get("/me")).text) == before_resident - 45
    await as_person(pages, volunteer)
    assert balance_on((await pages.get("/me")).text) == before_volunteer + 45


async def test_a_gift_to_a_relative_moves_once_and_to_a_stranger_is_refused_next_to_the_field(
    pages: AsyncTestClient[Any], api: Api
) -> None:
    community = await api.community(gift_scope="relatives")
    giver = await person(api, community, "volunteer", name="周彦芳", minutes=300)
    daughter = await person(api, community, "resident", name="王芳")
    stranger = await person(api, community, "resident", name="李强")
    await relate(api, giver, daughter)
    await as_person(pages, giver)
    drawn = await pages.get("/gift", headers=ZH)
    assert "王芳" in drawn.text
    assert "李强" not in drawn.text
    refused = await pages.post(
        "/gift", data=form_of(drawn.text, to="number", member_no=stranger.member_no, hours="1"), headers=ZH
    )
    assert refused.status_code == 422
    assert re.search(r'<p class="problem" id="to-problem">[^<]*不是您登记的亲属', refused.text), refused.text
    too_much = await pages.post("/gift", data=form_of(drawn.text, to=f"m:{daughter.member.id}", hours="6"), headers=ZH)
    assert too_much.status_code == 422
    assert re.search(r'id="hours-problem">您可用的时间不够', too_much.text)
    review = await pages.post("/gift", data=form_of(drawn.text, to=f"m:{daughter.member.id}", hours="2"), headers=ZH)
    assert review.status_code == 200
    assert "周彦芳" in review.text
    assert "王芳" in review.text
    assert "2 小时" in review.text
    assert await api.balance(giver.member.account_id) == 300  # nothing moved at the check step
    confirm = form_of(review.text)
    answers = [await pages.post("/gift", data=confirm, headers=ZH) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200]
    assert '已转给 <span translate="no">王芳</span> <span translate="no">2 小时</span>' in answers[0].text
    assert await api.balance(giver.member.account_id) == 180
    assert await api.balance(daughter.member.account_id) == 120
    # The stranger, given by a crafted confirmation (no check step): refused by the ledger, in words.
    crafted = form_of(review.text, to="number", member_no=stranger.member_no, key="page-" + "x" * 30)
    direct = await pages.post("/gift", data=crafted, headers=EN)
    assert direct.status_code == 422
    assert "not one of your relatives" in direct.text
    assert await api.balance(stranger.member.account_id) == 0


async def test_a_donation_to_the_pool(pages: AsyncTestClient[Any], api: Api) -> None:
    community = await api.community()
    giver = await person(api, community, "resident", "volunteer", name="周彦芳", minutes=120)
    await as_person(pages, giver)
    drawn = await pages.get("/gift", headers=EN)
    review = await pages.post("/gift", data=form_of(drawn.text, to="pool", hours="1.5"), headers=EN)
    assert "The community pool" in review.text
    assert "1 hour 30 minutes" in review.text
    done = await pages.post("/gift", data=form_of(review.text), headers=EN)
    assert "Given to the community pool" in done.text
    assert await api.balance(community.accounts["pool"]) == 90


async def test_every_form_refuses_a_post_without_the_csrf_token(pages: AsyncTestClient[Any], api: Api) -> None:
    community = await api.community()
    member = await person(api, community, "resident", "volunteer", name="周桂兰", minutes=120)
    await as_person(pages, member)
    some = str(uuid.uuid4())
    for path in ("/ask", "/gift", f"/my-requests/{some}/confirm", f"/my-requests/{some}/dispute",
                 f"/my-requests/{some}/cancel", f"/requests/{some}/claim", f"/tasks/{some}/check-in",
                 f"/tasks/{some}/report", f"/tasks/{some}/withdraw"):  # fmt: skip
        answer = await pages.post(path, data={"key": "page-" + "k" * 30, "minutes": "60"})
        assert answer.status_code == 403, path
        forged = await pages.post(path, data={"csrf_token": "0" * 64})
        assert forged.status_code == 403, path
    assert await api.balance(member.member.account_id) == 120


async def test_bad_values_are_said_in_words_with_400(pages: AsyncTestClient[Any], api: Api) -> None:
    community = await api.community()
    member = await person(api, community, "resident", "volunteer", name="周桂兰", minutes=120)
    await as_person(pages, member)
    chosen = await pages.get(f"/ask?type={TYPE}", headers=EN)
    cases = {"minutes": ("0", "minutes"), "day": ("tomorrow", "choose a day"), "time": ("25:99", "choose a time")}
    for field, (value, words) in cases.items():
        bad = await pages.post(
            "/ask", data=form_of(chosen.text, **({"day": "2030-01-01"} | {field: value})), headers=EN
        )
        assert bad.status_code == 400, field
        assert re.search(rf'id="{field}-problem">[^<]*{words}', bad.text), (field, bad.text)
    gift = await pages.get("/gift", headers=EN)
    for hours in ("", "abc", "-1", "0.01", "NaN", "1e400"):
        bad = await pages.post("/gift", data=form_of(gift.text, to="pool", hours=hours), headers=EN)
        assert (bad.status_code, 'id="hours-problem"' in bad.text) == (400, True), hours
    nobody = await pages.post("/gift", data=form_of(gift.text, to="number", member_no="999999", hours="1"), headers=EN)
    assert nobody.status_code == 400
    assert "no member with this number" in nobody.text
    await _ask(pages, **EN)
    mine = await pages.get("/my-requests")
    request_id = re.findall(r'href="/my-requests/([0-9a-f-]{36})"', mine.text)[0]
    detail = await pages.get(f"/my-requests/{request_id}", headers=EN)
    for rating in ("", "0", "6", "five"):
        bad = await pages.post(
            f"/my-requests/{request_id}/confirm", data=form_of(detail.text, rating=rating), headers=EN
        )
        assert (bad.status_code, "how many stars" in bad.text) == (400, True), rating
    assert await api.balance(member.member.account_id) == 120


async def test_another_communitys_request_is_not_found(pages: AsyncTestClient[Any], api: Api) -> None:
    elsewhere = await api.community()
    asker = await person(api, elsewhere, "resident", "volunteer", name="周桂兰", minutes=120)
    await as_person(pages, asker)
    await _ask(pages)
    other_id = re.findall(r'href="/my-requests/([0-9a-f-]{36})"', (await pages.get("/my-requests")).text)[0]
    here = await api.community()
    member = await person(api, here, "resident", "volunteer", name="王芳", minutes=120)
    await as_person(pages, member)
    page = await pages.get("/me")
    csrf = form_of(page.text)["csrf_token"]
    assert (await pages.get(f"/my-requests/{other_id}")).status_code == 404
    for path in ("my-requests/{}/confirm", "my-requests/{}/dispute", "my-requests/{}/cancel", "requests/{}/claim",
                 "tasks/{}/check-in", "tasks/{}/report", "tasks/{}/withdraw"):  # fmt: skip
        answer = await pages.post(
            "/" + path.format(other_id), data={"csrf_token": csrf, "key": "page-" + uuid.uuid4().hex,
                                               "rating": "5", "minutes": "60", "reason": "x"},
        )  # fmt: skip
        assert answer.status_code == 404, path
        assert "does not exist" in answer.text or "不存在" in answer.text
    assert "周桂兰" not in (await pages.get("/requests")).text


async def test_pages_are_for_the_right_roles_and_me_links_them(pages: AsyncTestClient[Any], api: Api) -> None:
    community = await api.community()
    resident = await person(api, community, "resident", name="周桂兰")
    volunteer = await person(api, community, "volunteer", name="王芳")
    await as_person(pages, resident)
    me = (await pages.get("/me")).text
    assert 'href="/ask"' in me
    assert 'href="/my-requests"' in me
    assert 'href="/gift"' in me
    assert 'href="/requests"' not in me
    assert 'href="/tasks"' not in me
    assert me.count("button main") == 1
    for path in ("/requests", "/tasks"):
        assert (await pages.get(path)).status_code == 403, path
    await as_person(pages, volunteer)
    me = (await pages.get("/me")).text
    assert 'href="/requests"' in me
    assert 'href="/tasks"' in me
    assert 'href="/ask"' not in me
    assert me.count("button main") == 1
    for path in ("/ask", "/my-requests"):
        assert (await pages.get(path)).status_code == 403, path
    pages.cookies.clear()
    for path in ("/ask", "/my-requests", "/requests", "/tasks", "/gift", f"/my-requests/{uuid.uuid4()}"):
        answer = await pages.get(path)
        assert (answer.status_code, answer.headers.get("location")) == (303, "/login"), path


async def test_open_requests_never_show_a_phone_or_birth_date(pages: AsyncTestClient[Any], api: Api) -> None:
    community = await api.community()
    asker = await person(
        api,
        community,
        "resident",
        "volunteer",
        name="周桂兰",
        minutes=120,
        phone="13912345678",
        birth_date="1941-03-05",
    )
    volunteer = await person(api, community, "volunteer", name="王芳")
    await as_person(pages, asker)
    await _ask(pages)
    await as_person(pages, volunteer)
    for headers in (ZH, EN):
        html = (await pages.get("/requests", headers=headers)).text
        assert "周桂兰" in html
        assert "13912345678" not in html
        assert "1941" not in html
        assert "3月5日" not in html


async def test_withdraw_and_cancel(pages: AsyncTestClient[Any], api: Api) -> None:
    community = await api.community()
    asker = await person(api, community, "resident", "volunteer", name="周桂兰", minutes=120)
    volunteer = await person(api, community, "volunteer", name="王芳")
    await as_person(pages, asker)
    await _ask(pages)
    assert (await api.account(asker.member.account_id))["held_minutes"] == 60
    await as_person(pages, volunteer)
    open_page = await pages.get("/requests", headers=EN)
    [request_id] = _request_ids(open_page.text, "claim")
    await pages.post(f"/requests/{request_id}/claim", data=form_of(open_page.text))
    tasks = await pages.get("/tasks", headers=EN)
    withdraw_key = re.findall(r'name="key" value="([^"]+)"', tasks.text)[1]
    out = await pages.post(
        f"/tasks/{request_id}/withdraw", data={"csrf_token": form_of(tasks.text)["csrf_token"], "key": withdraw_key},
        headers=EN,
    )  # fmt: skip
    assert out.status_code == 200
    assert "Another volunteer can take it" in out.text
    assert request_id in (await pages.get("/requests")).text
    await as_person(pages, asker)
    detail = await pages.get(f"/my-requests/{request_id}", headers=EN)
    cancelled = await pages.post(f"/my-requests/{request_id}/cancel", data=form_of(detail.text), headers=EN)
    assert cancelled.status_code == 200
    assert "cancelled" in cancelled.text
    assert (await api.account(asker.member.account_id))["held_minutes"] == 0
    late = await pages.post(f"/my-requests/{request_id}/cancel", data=form_of(detail.text, key="page-" + "z" * 30))
    assert late.status_code == 409
    assert 'id="cancel-problem"' in late.text


async def test_hostile_values_get_words_not_errors(pages: AsyncTestClient[Any], api: Api) -> None:
    community = await api.community()
    member = await person(api, community, "resident", "volunteer", name="周桂兰", minutes=120)
    await as_person(pages, member)
    csrf = form_of((await pages.get("/me")).text)["csrf_token"]
    hostile = ["\x00", "a" * 5000, "' or 1=1 --", "<script>alert(1)</script>", "٣٣", "9" * 40, "-5", "1e9", "m:x"]
    paths = ["/ask", "/gift", "/my-requests/{}/confirm", "/my-requests/{}/dispute", "/my-requests/{}/cancel",
             "/requests/{}/claim", "/tasks/{}/check-in", "/tasks/{}/report", "/tasks/{}/withdraw"]  # fmt: skip
    fields = ("service_type", "day", "time", "minutes", "funding", "to", "member_no", "hours", "rating", "comment",
              "reason", "key")  # fmt: skip
    for value in hostile:
        for path in paths:
            target = path.format(value if "{}" in path else "")
            data = dict.fromkeys(fields, value) | {"csrf_token": csrf}
            answer = await pages.post(target.replace("\x00", "%00"), data=data)
            assert answer.status_code < 500, (path, value, answer.status_code)
            assert "<script>alert" not in answer.text
    for path in ("/ask?type=%00", "/ask?type=" + "x" * 3000, "/my-requests/%ff", "/my-requests/" + "9" * 300):
        assert (await pages.get(path)).status_code < 500, path
    assert await api.balance(member.member.account_id) == 120


async def test_every_word_on_the_member_pages_is_translated(pages: AsyncTestClient[Any], api: Api) -> None:
    community = await api.community(gift_scope="relatives")
    member = await person(api, community, "resident", "volunteer", name="周桂兰", minutes=600)
    helper = await person(api, community, "volunteer", name="王芳")
    stranger = await person(api, community, "resident", name="李强")
    await relate(api, member, helper)
    for language, headers in (("zh", ZH), ("en", EN)):
        await as_person(pages, member, **headers)
        drawn: dict[str, str] = {}
        for path in ("/me", "/ask", f"/ask?type={TYPE}", "/my-requests", "/requests", "/tasks", "/gift",
                     f"/my-requests/{uuid.uuid4()}"):  # fmt: skip
            drawn[path] = (await pages.get(path, headers=headers)).text
        chosen = drawn[f"/ask?type={TYPE}"]
        drawn["ask refused"] = (await pages.post("/ask", data=form_of(chosen, minutes="x"), headers=headers)).text
        soon = (date.today() + timedelta(days=10)).isoformat()
        typed = form_of(chosen, day=soon, time="10:00", minutes="60")
        review = await pages.post("/ask", data=typed, headers=headers)
        drawn["ask confirm"] = review.text
        drawn["ask done"] = (await pages.post("/ask", data=form_of(review.text), headers=headers)).text
        request_id = re.findall(r'href="/my-requests/([0-9a-f-]{36})"', (await pages.get("/my-requests")).text)[0]
        drawn["my request"] = (await pages.get(f"/my-requests/{request_id}", headers=headers)).text
        gift = drawn["/gift"]
        refused = form_of(gift, to="number", member_no=stranger.member_no, hours="x")
        drawn["gift refused"] = (await pages.post("/gift", data=refused, headers=headers)).text
        review = await pages.post("/gift", data=form_of(gift, to=f"m:{helper.member.id}", hours="1"), headers=headers)
        drawn["gift confirm"] = review.text
        drawn["gift done"] = (await pages.post("/gift", data=form_of(review.text), headers=headers)).text
        await as_person(pages, stranger, **headers)
        drawn["not yours"] = (await pages.get("/requests", headers=headers)).text
        found = {name: words for name, html in drawn.items() if (words := untranslated(html, language))}
        assert found == {}, f"{language}: words not from the catalog"
