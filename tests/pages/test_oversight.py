"""The pages of coordinators and auditors: each person's home, the monthly report (tables, charts,
CSV) and the audit trail with the public log's checkpoint; nothing there writes."""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar.testing import AsyncTestClient

from tests.client import Api
from tests.pages.helpers import csrf_of
from tests.pages.people import person, signed_in
from tests.pages.test_catalog import untranslated
from timebank.auth.bootstrap import create_principal
from timebank.http.context import Principal
from timebank.pages.oversight import home_of, last_full_month

ZH = {"Accept-Language": "zh-CN"}


def events_of(html: str) -> str:
    """The list of events of an /audit page (the filter's options name every action too)."""
    found = re.search(r'<ol class="statement events">.*?</ol>', html, re.S)
    return found.group(0) if found else ""


EN = {"Accept-Language": "en"}


def _principal(kind: str, *roles: str, member: bool = True, community: bool = True) -> Principal:
    return Principal(
        id=uuid.uuid4(), kind=kind, roles=roles, community_id=uuid.uuid4() if community else None,
        member_id=uuid.uuid4() if member else None,
    )  # fmt: skip


def test_each_person_has_a_home() -> None:
    assert home_of(_principal("member", "resident")) == "/me"
    assert home_of(_principal("member", "volunteer", "resident")) == "/me"
    assert home_of(_principal("member", "coordinator", "resident")) == "/staff"
    assert home_of(_principal("member", "auditor")) == "/audit"
    assert home_of(_principal("auditor", "auditor", member=False)) == "/audit"
    assert home_of(_principal("auditor", "auditor", member=False, community=False)) == "/audit"
    assert home_of(_principal("admin", "admin", member=False, community=False)) == "/audit"


def test_the_default_month_is_the_last_full_one_where_the_community_is() -> None:
    # 1 December 2026 at 01:00 in Shanghai is still November in UTC: the last full month is November there.
    assert str(last_full_month("Asia/Shanghai", datetime(2026, 11, 30, 17, 0, tzinfo=UTC))) == "2026-11"
    assert str(last_full_month("UTC", datetime(2026, 11, 30, 17, 0, tzinfo=UTC))) == "2026-10"
    assert str(last_full_month("Asia/Shanghai", datetime(2027, 1, 5, tzinfo=UTC))) == "2026-12"


async def test_slash_sends_each_role_home(pages: AsyncTestClient[Any], api: Api) -> None:
    community = await api.community()
    expected = {("resident",): "/me", ("volunteer",): "/me", ("coordinator", "resident"): "/staff",
                ("auditor",): "/audit"}  # fmt: skip
    for roles, home in expected.items():
        await signed_in(pages, await person(api, community, *roles))
        answer = await pages.get("/")
        assert answer.status_code == 303, roles
        assert answer.headers["location"] == home, roles
    pages.cookies.clear()
    assert (await pages.get("/")).headers["location"] == "/login"


async def test_residents_and_volunteers_are_told_the_pages_are_not_theirs(
    pages: AsyncTestClient[Any], api: Api
) -> None:
    community = await api.community()
    for role in ("resident", "volunteer"):
        await signed_in(pages, await person(api, community, role), **EN)
        for path in ("/staff/reports", "/staff/reports/csv", "/audit"):
            answer = await pages.get(path, headers=EN)
            assert answer.status_code == 403, (role, path)
            assert "for coordinators and auditors" in answer.text


async def _month_with_services(api: Api) -> tuple[Any, Any, Any]:
    community = await api.community()
    coordinator = await person(api, community, "coordinator", name="李协调")
    auditor = await person(api, community, "auditor", name="赵审计")
    volunteer = await api.member(community, "volunteer", name="王志愿", grid="2")
    assert (await api.credit(volunteer, 150)).status_code == 201
    return community, coordinator, auditor


async def test_the_monthly_report_shows_tables_charts_and_the_apis_csv(pages: AsyncTestClient[Any], api: Api) -> None:
    community, coordinator, auditor = await _month_with_services(api)
    month = datetime.now(UTC).strftime("%Y-%m")
    for someone in (coordinator, auditor):
        await signed_in(pages, someone, **ZH)
        page = await pages.get(f"/staff/reports?month={month}", headers=ZH)
        assert page.status_code == 200, page.text
        html = page.text
        assert html.count('<svg class="chart"') == 2
        assert re.search(r'<svg[^>]*role="img"[^>]*aria-labelledby="grid-chart-title grid-chart-desc"', html)
        assert '<title id="grid-chart-title">' in html
        assert '<desc id="grid-chart-desc">' in html
        assert "网格 2" in html
        assert '<data value="150">2 小时 30 分钟</data>' in html
        assert "2.5 小时" in html  # the bar's amount in the chart
        assert f"/staff/reports/csv?month={month}" in html
        csv_page = await pages.get(f"/staff/reports/csv?month={month}", headers=ZH)
        assert csv_page.status_code == 200
        assert csv_page.content.startswith("\ufeff".encode())
        assert "获得时长（分钟）" in csv_page.content.decode("utf-8")
        from_api = await api.client.get(
            f"/v1/communities/{community.slug}/reports/monthly", params={"month": month},
            headers={"Authorization": f"Bearer {someone.member.token}", "Accept": "text/csv", **ZH},
        )  # fmt: skip
        assert from_api.status_code == 200
        assert csv_page.content == from_api.content
        assert 'attachment; filename="report-' in csv_page.headers["content-disposition"]
        english = await pages.get(f"/staff/reports?month={month}", headers=EN)
        assert "Grid 2" in english.text
        assert "2.5 h" in english.text


async def test_a_month_that_is_no_month_is_said_next_to_the_field(pages: AsyncTestClient[Any], api: Api) -> None:
    _, coordinator, _ = await _month_with_services(api)
    await signed_in(pages, coordinator, **EN)
    for bad in ("2026-13", "-1", "<b>x</b>", "2026-1", "0000-01"):
        answer = await pages.get("/staff/reports", params={"month": bad}, headers=EN)
        assert answer.status_code == 400, bad
        assert 'id="month-problem"' in answer.text
        assert "<b>x</b>" not in answer.text
    earliest = await pages.get("/staff/reports", params={"month": "1900-01"}, headers=EN)
    assert earliest.status_code == 200, "the first month there is has no months before it to chart"


async def test_the_audit_trail_names_people_filters_and_pages(pages: AsyncTestClient[Any], api: Api) -> None:
    community, _coordinator, auditor = await _month_with_services(api)
    await signed_in(pages, auditor, **ZH)
    page = await pages.get("/audit", headers=ZH)
    assert page.status_code == 200, page.text
    assert "登记了新成员" in events_of(page.text)
    assert "王志愿" in page.text
    assert re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-", page.text) is None, "names, not ids"
    assert 'id="checkpoint-size"' in page.text or "还没有签名的检查点" in page.text
    forms = re.findall(r'<form[^>]*method="post"[^>]*action="([^"]*)"', page.text)
    assert forms == ["/logout"], "an auditor's page has no control that writes"
    only = await pages.get("/audit", params={"action": "member.signed_in"}, headers=ZH)
    assert "登录" in events_of(only.text)
    assert "登记了新成员" not in events_of(only.text)
    by_name = await pages.get("/audit", params={"actor": "李协调"}, headers=ZH)
    assert by_name.status_code == 200
    assert "登记了新成员" not in events_of(by_name.text)
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)  # days are the community's (Shanghai's)
    dated = await pages.get("/audit", params={"from": "2000-01-01", "to": tomorrow.isoformat()}, headers=ZH)
    assert "登记了新成员" in events_of(dated.text)
    old = await pages.get("/audit", params={"to": "2001-01-01"}, headers=ZH)
    assert "没有符合条件的记录" in old.text
    bad = await pages.get("/audit", params={"from": "2026-13-01"}, headers=ZH)
    assert bad.status_code == 400
    assert 'id="from-problem"' in bad.text
    for _ in range(13):  # 26 events more: more than a page holds
        await api.member(community, "volunteer", name="新成员")
    first = await pages.get("/audit", headers=ZH)
    older = re.search(r'href="/audit\?before=([0-9]+)"', first.text)
    assert older, "a link to older events"
    second = await pages.get(f"/audit?before={older.group(1)}", headers=ZH)
    assert second.status_code == 200
    assert "王志愿" in second.text


async def test_another_community_named_in_the_query_is_not_found(pages: AsyncTestClient[Any], api: Api) -> None:
    _, coordinator, _ = await _month_with_services(api)
    other = await api.community()
    await signed_in(pages, coordinator, **EN)
    for path in ("/staff/reports", "/staff/reports/csv", "/audit"):
        answer = await pages.get(path, params={"community": other.slug}, headers=EN)
        assert answer.status_code == 404, path
        assert f"社区 {other.slug}" not in answer.text  # its name (the slug asked for is echoed in links only)


async def _token_form(pages: AsyncTestClient[Any]) -> str:
    page = await pages.get("/login?token", headers=EN)
    assert page.status_code == 200
    assert 'action="/login/token"' in page.text
    return csrf_of(page.text)


async def test_an_auditor_without_a_pin_signs_in_with_an_access_token(
    pages: AsyncTestClient[Any], api: Api, database: str
) -> None:
    community, _, _ = await _month_with_services(api)
    held = "tb_auditor_" + secrets.token_urlsafe(24)
    await create_principal(database, "auditor", community.slug, held)
    pages.cookies.clear()
    signed = await pages.post("/login/token", data={"csrf_token": await _token_form(pages), "token": held})
    assert signed.status_code == 303
    session_token = pages.cookies.get("tb_session")
    assert session_token
    assert session_token != held, "the session is a token of its own"
    home = await pages.get("/")
    assert home.headers["location"] == "/audit"
    page = await pages.get("/audit", headers=EN)
    assert page.status_code == 200
    assert "Signed in with an access key" in events_of(page.text)
    assert (await pages.get("/staff/reports", headers=EN)).status_code == 200
    assert (await pages.post("/logout", data={"csrf_token": csrf_of(page.text)})).status_code == 303
    assert (await pages.get("/audit")).headers["location"] == "/login", "signed out"
    still = await api.get(f"/v1/communities/{community.slug}/reports/monthly", held, month="2026-11")
    assert still.status_code == 200, "signing out revoked the session, not the token the auditor keeps"


async def test_a_wrong_or_revoked_token_or_no_csrf_signs_nobody_in(pages: AsyncTestClient[Any], api: Api) -> None:
    pages.cookies.clear()
    for wrong in ("tb_nobody_" + secrets.token_urlsafe(24), "x" * 5000, "a\x00b", ""):
        answer = await pages.post("/login/token", data={"csrf_token": await _token_form(pages), "token": wrong})
        assert answer.status_code in (400, 401), wrong[:20]
        assert 'id="sign-in-problem"' in answer.text
        assert "tb_session" not in pages.cookies
    member = await api.member(await api.community(), "resident")
    revoked = await api.get(f"/v1/members/{member.id}/tokens", api.admin_token)
    token_id = revoked.json()["items"][0]["id"]
    assert (await api.post(f"/v1/tokens/{token_id}/revoke", api.admin_token)).status_code == 200
    answer = await pages.post("/login/token", data={"csrf_token": await _token_form(pages), "token": member.token})
    assert answer.status_code == 401
    refused = await pages.post("/login/token", data={"token": api.admin_token})
    assert refused.status_code == 403
    assert "tb_session" not in pages.cookies


async def test_every_word_on_the_overseers_pages_is_translated(pages: AsyncTestClient[Any], api: Api) -> None:
    community, coordinator, _ = await _month_with_services(api)
    resident = await person(api, community, "resident")
    month = datetime.now(UTC).strftime("%Y-%m")
    for language, headers in (("zh", ZH), ("en", EN)):
        await signed_in(pages, coordinator, **headers)
        drawn = {
            "reports": (await pages.get(f"/staff/reports?month={month}", headers=headers)).text,
            "reports bad month": (await pages.get("/staff/reports?month=2026-13", headers=headers)).text,
            "audit": (await pages.get("/audit", headers=headers)).text,
            "audit bad day": (await pages.get("/audit?from=2026-02-30", headers=headers)).text,
        }
        await signed_in(pages, resident, **headers)
        drawn["away"] = (await pages.get("/audit", headers=headers)).text
        pages.cookies.clear()
        token_page = await pages.get("/login?token", headers=headers)
        drawn["/login?token"] = token_page.text
        wrong = {"csrf_token": csrf_of(token_page.text), "token": "tb_wrong"}
        drawn["/login?token wrong"] = (await pages.post("/login/token", data=wrong, headers=headers)).text
        found = {name: words for name, html in drawn.items() if (words := untranslated(html, language))}
        assert found == {}, f"{language}: words not from the catalog"


async def test_a_grid_named_in_html_is_drawn_as_text(pages: AsyncTestClient[Any], api: Api) -> None:
    community = await api.community()
    coordinator = await person(api, community, "coordinator")
    volunteer = await api.member(community, "volunteer", grid="<script>x</script>")
    assert (await api.credit(volunteer, 60)).status_code == 201
    await signed_in(pages, coordinator)
    page = await pages.get("/staff/reports", params={"month": datetime.now(UTC).strftime("%Y-%m")})
    assert page.status_code == 200
    assert "<script>" not in page.text
    assert "&lt;script&gt;x&lt;/script&gt;" in page.text  # in the chart and in the table


async def test_an_admin_signed_in_with_its_token_chooses_the_community(pages: AsyncTestClient[Any], api: Api) -> None:
    community, _, _ = await _month_with_services(api)
    pages.cookies.clear()
    signed = await pages.post("/login/token", data={"csrf_token": await _token_form(pages), "token": api.admin_token})
    assert signed.status_code == 303
    assert (await pages.get("/")).headers["location"] == "/audit"
    chosen = await pages.get("/audit", params={"community": community.slug}, headers=ZH)
    assert chosen.status_code == 200
    assert f'<option value="{community.slug}" translate="no" selected>' in chosen.text
    assert "王志愿" in events_of(chosen.text)
    report = await pages.get("/staff/reports", params={"community": community.slug}, headers=ZH)
    assert report.status_code == 200
    assert f"community={community.slug}" in report.text  # the CSV link keeps the community
    assert (await pages.get("/audit", params={"community": "c-nowhere"})).status_code == 404


async def test_the_community_being_read_is_always_among_the_choices(pages: AsyncTestClient[Any], api: Api) -> None:
    """The chooser lists the first 200 communities; a later one, being read, is listed (and selected) too."""
    for _ in range(201):
        await api.community()
    late = await api.community()
    pages.cookies.clear()
    signed = await pages.post("/login/token", data={"csrf_token": await _token_form(pages), "token": api.admin_token})
    assert signed.status_code == 303
    chosen = await pages.get("/audit", params={"community": late.slug}, headers=ZH)
    assert chosen.status_code == 200
    assert f'<option value="{late.slug}" translate="no" selected>' in chosen.text


async def test_the_audit_page_shows_the_last_check_of_the_ledger(
    pages: AsyncTestClient[Any], api: Api, owner: Any
) -> None:
    community, _, auditor = await _month_with_services(api)
    community_id = uuid.UUID(community.id)
    await signed_in(pages, auditor)
    # Recorded by `timebank verify` (tests/cli/test_verify.py runs the command); here by its function.
    await owner.execute("select timebank.record_verify_run($1, false, 12, 0)", community_id)
    passed = await pages.get("/audit", headers=ZH)
    assert re.search(r'<p id="last-verify" data-violations="0">\s*<strong>通过：没有发现问题。</strong>', passed.text)
    assert "本社区" in passed.text
    await owner.execute("select timebank.record_verify_run($1, true, 15, 2)", community_id)
    failed = await pages.get("/audit", headers={"Accept-Language": "en"})
    assert re.search(r'<p id="last-verify" data-violations="2">\s*<strong>Problems found: 2</strong>', failed.text)
    assert "with the saved checkpoints" in failed.text
