"""The coordinator's pages in real Chromium against a real `timebank serve` process.

Journey (b) of issue 11, in Chinese and in English, with JavaScript off: a coordinator registers a
member, sets a PIN (the member then signs in with it), credits an activity of 10 volunteers on
/staff/credit and corrects one credit with a reason; balances are checked through the API.
Then every staff page, in both languages at 1280 px and 375 px: axe-core (0 serious or critical),
sizes, no other host, a screenshot.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page

from tests.client import Api
from tests.e2e.server import Server
from tests.pages import test_browser as shared
from tests.pages.helpers import PIN, Resident
from tests.pages.staff_helpers import member_no, office, with_pin
from tests.pages.test_browser import LOCALES, WIDTHS, check_page, sign_in, visit

pytestmark = [pytest.mark.browser, pytest.mark.slow]
# The browser and the server process, as the pages' other browser tests have them.
browser = shared.browser
server = shared.server

WORDS = {
    "zh": {
        "registered": "会员已登记",
        "pin": "新密码已设置",
        "credited": "已为 10 位志愿者各记入 1 小时",
        "corrected": "已更正：收回 1 小时",
    },
    "en": {
        "registered": "The member is registered",
        "pin": "The new PIN is set",
        "credited": "Credited 10 volunteers 1 hour each",
        "corrected": "Corrected: 1 hour taken back",
    },
}


async def _text(page: Page) -> str:
    return re.sub(r"\s+", " ", await page.inner_text("main"))


async def test_a_coordinator_registers_sets_a_pin_credits_an_activity_and_corrects_one(
    browser: Browser, server: Server, api: Api, screenshot_dir: Path
) -> None:
    for language in LOCALES:
        place = await office(api)
        volunteers = [await api.member(place.community, "volunteer", name=f"志愿者{i}号") for i in range(9)]
        seen = await visit(browser, server, language, 375, scripts=False)
        page = await seen.context.new_page()
        await sign_in(page, place.coordinator)
        await page.wait_for_url("**/staff")
        # Register a volunteer.
        await page.goto("/staff/members/new")
        await page.fill("#display_name", "钱新来")
        await page.uncheck("input[name=roles][value=resident]")
        await page.check("input[name=roles][value=volunteer]")
        await page.fill("#grid", "3")
        await page.click("button.main")
        await page.wait_for_url(re.compile(r".*/staff/members/[0-9a-f-]{36}\?done=registered$"))
        assert WORDS[language]["registered"] in await _text(page)
        member_page = page.url.split("?")[0]
        new_member_id = member_page.rsplit("/", 1)[1]
        new_no = (await page.inner_text("#member-no")).strip()
        await page.screenshot(path=str(screenshot_dir / f"journey-registered-{language}.png"), full_page=True)
        # Set its PIN; the member signs in with it on its own phone.
        await page.fill("#pin", "135790")
        await page.click("form[action$='/pin'] button")
        await page.wait_for_url("**done=pin")
        assert WORDS[language]["pin"] in await _text(page)
        phone = await visit(browser, server, language, 375, scripts=False)
        own = await phone.context.new_page()
        await sign_in(own, Resident(place.community, None, new_no), pin="135790")  # type: ignore[arg-type]
        await own.wait_for_url("**/me")
        assert await own.locator("data#balance").get_attribute("value") == "0"
        await phone.context.close()
        # Credit an activity of 10 volunteers: the registered one and nine others.
        numbers = [new_no] + [await member_no(api, v) for v in volunteers]
        await page.goto("/staff/credit")
        await page.fill("#numbers", "\n".join(numbers))
        await page.fill("#service_date", "2026-11-30")
        await page.fill("#minutes", "60")
        await page.fill("#description", "重阳节敬老活动")
        await page.click("button.main")
        await page.wait_for_url("**/staff/credit/check")
        assert await page.locator("#volunteers li").count() == 10
        await page.screenshot(path=str(screenshot_dir / f"journey-credit-check-{language}.png"), full_page=True)
        await page.click("button.main")
        await page.wait_for_url("**/staff/credit/confirm")
        assert WORDS[language]["credited"] in await _text(page)
        assert await page.locator("#credited li").count() == 10
        await page.screenshot(path=str(screenshot_dir / f"journey-credit-done-{language}.png"), full_page=True)
        # Correct the credit of the first (the registered member), with a reason.
        await page.locator("#credited li").first.locator("a.button").click()
        await page.wait_for_url("**/staff/reverse/*")
        await page.fill("#reason", "重复登记" if language == "zh" else "credited twice by mistake")
        await page.click("button.main")
        assert WORDS[language]["corrected"] in await _text(page)
        await page.screenshot(path=str(screenshot_dir / f"journey-corrected-{language}.png"), full_page=True)
        # The balances, through the API.
        registered = (await api.get(f"/v1/members/{new_member_id}", api.admin_token)).json()
        assert await api.balance(registered["account_id"]) == 0
        for volunteer in volunteers:
            assert await api.balance(volunteer.account_id) == 60
        assert seen.foreign() == []
        await seen.context.close()


async def _staff_pages(page: Page, api: Api, work: dict[str, str], tag: str, folder: Path) -> None:
    """Every staff page, checked and photographed as it is drawn for this context."""
    member = work["member_id"]
    for name, path in (
        ("home", "/staff"),
        ("members", "/staff/members?q=%E7%8E%8B"),
        ("register", "/staff/members/new"),
        ("member", f"/staff/members/{member}"),
        ("history", f"/staff/members/{member}/history"),
        ("credit", "/staff/credit"),
        ("requests", "/staff/requests"),
        ("request", f"/staff/requests/{work['request']}"),
        ("reverse", f"/staff/reverse/{work['credit']}"),
        ("not-found", f"/staff/members/{uuid.uuid4()}"),
    ):
        await page.goto(path)
        await check_page(page, f"staff-{name}-{tag}", folder)
    await page.goto("/staff/credit")
    await page.fill("#numbers", work["volunteer_no"] + " 999999")
    await page.fill("#minutes", "30")
    await page.click("button.main")
    await check_page(page, f"staff-credit-unknown-{tag}", folder)
    await page.fill("#numbers", work["volunteer_no"])
    await page.click("button.main")
    await check_page(page, f"staff-credit-check-{tag}", folder)
    await page.click("button.main")
    await check_page(page, f"staff-credit-done-{tag}", folder)
    await page.locator("#credited a.button").first.click()
    await page.fill("#reason", "test")
    await page.click("button.main")
    await check_page(page, f"staff-reverse-done-{tag}", folder)
    await page.goto(f"/staff/members/{member}")
    await page.click("form[action$='/card'] button")
    await check_page(page, f"staff-card-{tag}", folder)
    card_url = (await page.inner_text("#card-url")).strip()
    await page.context.clear_cookies()
    await page.goto(card_url)
    await check_page(page, f"card-sign-in-{tag}", folder)
    await page.fill("#pin", PIN)
    await page.click("button.main")
    await page.wait_for_url("**/me")
    await page.goto("/staff")  # the card's member is a resident and volunteer: not for them
    await check_page(page, f"staff-not-for-you-{tag}", folder)
    await page.goto("/login/card/not-a-card")
    await check_page(page, f"card-unknown-{tag}", folder)


async def test_every_staff_page_passes_axe_in_both_languages_and_widths(
    browser: Browser, server: Server, api: Api, screenshot_dir: Path
) -> None:
    place = await office(api)
    resident = await api.member(place.community, "resident", "volunteer", name="王秀英", grid="2", phone="13800000000")
    await with_pin(api, place.community, resident)
    volunteer = await api.member(place.community, "volunteer", name="张志愿")
    credit = (await api.credit(resident, 120)).json()
    slug = place.community.slug
    await api.post(
        f"/v1/communities/{slug}/service-types",
        api.admin_token,
        {"code": "meals", "name": "助餐", "default_minutes": 60},
    )
    at = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    asked = await api.post(
        "/v1/service-requests",
        api.admin_token,
        {"member_id": resident.id, "service_type": "meals", "scheduled_at": at, "funding": "own"},
    )
    assert asked.status_code == 201, asked.text
    work = {
        "member_id": resident.id,
        "request": asked.json()["id"],
        "credit": credit["id"],
        "volunteer_no": await member_no(api, volunteer),
    }
    for language in LOCALES:
        for width_name, width in WIDTHS.items():
            seen = await visit(browser, server, language, width)
            page = await seen.context.new_page()
            await sign_in(page, place.coordinator, PIN)
            await page.wait_for_url("**/staff")
            await _staff_pages(page, api, work, f"{language}-{width_name}", screenshot_dir)
            assert seen.foreign() == [], "requests left the service"
            await seen.context.close()


async def test_a_double_clicked_and_reloaded_activity_confirmation_credits_once(
    browser: Browser, server: Server, api: Api
) -> None:
    place = await office(api)
    volunteers = [await api.member(place.community, "volunteer", name=f"双击{i}") for i in range(2)]
    seen = await visit(browser, server, "zh", 1280, scripts=False)
    page = await seen.context.new_page()
    await sign_in(page, place.coordinator)
    await page.wait_for_url("**/staff")
    await page.goto("/staff/credit")
    await page.fill("#numbers", " ".join([await member_no(api, v) for v in volunteers]))
    await page.fill("#minutes", "30")
    await page.click("button.main")
    await page.wait_for_url("**/staff/credit/check")
    await page.dblclick("button.main")
    await page.wait_for_url("**/staff/credit/confirm")
    await page.wait_for_selector("#credited")
    await page.reload()  # the browser sends the confirmation again
    assert await page.locator("#credited li").count() == 2
    sent = [url for url in seen.requested if url.endswith("/staff/credit/confirm")]
    assert len(sent) >= 2, sent  # the confirmation reached the service more than once
    for volunteer in volunteers:
        assert await api.balance(volunteer.account_id) == 30
    await seen.context.close()
