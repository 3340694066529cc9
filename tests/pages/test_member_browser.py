"""The member pages in real Chromium against a real `timebank serve`: the whole journey of a
request with scripts off, in Chinese and in English; a gift to a relative and one refused; a double
click that moves hours once; and every new page checked by axe-core, measured and photographed in
both languages at 1280 px and 375 px."""

from __future__ import annotations

import asyncio
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from tests.client import Api
from tests.e2e.server import Server
from tests.pages.member_helpers import Person, person, relate
from tests.pages.test_browser import LOCALES, WIDTHS, browser, check_page, server, sign_in, visit

__all__ = ["browser", "server"]  # the module's fixtures, shared with test_browser.py

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WORDS = {
    "zh": {"meals": "助餐", "claim": "我来帮忙", "check_in": "签到", "report": "上报", "paid": "已付给",
           "given": "已转给", "not_relative": "不是您登记的亲属", "five": "5 星"},
    "en": {"meals": "Meals", "claim": "I will help", "check_in": "check in", "report": "Report the minutes",
           "paid": "has been paid", "given": "Given to", "not_relative": "not one of your relatives",
           "five": "5 stars"},
}  # fmt: skip
SECONDS = 30


async def balance(page: Page) -> int:
    await page.goto("/me")
    value = await page.locator("data#balance").get_attribute("value")
    assert value is not None
    return int(value)


async def signed_page(browser: Browser, server: Server, who: Person, language: str, width: int = 375) -> Page:
    seen = await visit(browser, server, language, width, scripts=False)
    page = await seen.context.new_page()
    await sign_in(page, who)
    await page.wait_for_url("**/me")
    return page


async def resident_text_sizes(page: Page) -> dict[str, Any]:
    """Every visible text at least 20 px; the main action at least 60 × 60 px; one main action."""
    sizes: dict[str, Any] = await asyncio.wait_for(
        page.evaluate(
            """() => ({
            small: [...document.querySelectorAll('main *')]
                .filter(e => e.offsetParent !== null && [...e.childNodes].some(
                    n => n.nodeType === 3 && n.textContent.trim()))
                .filter(e => parseFloat(getComputedStyle(e).fontSize) < 20)
                .map(e => `${e.tagName} ${e.textContent.trim().slice(0, 20)} ${getComputedStyle(e).fontSize}`),
            main: [...document.querySelectorAll('main .main')].map(e => {
                const r = e.getBoundingClientRect(); return [r.width, r.height]; }),
        })"""
        ),
        SECONDS,
    )
    assert sizes["small"] == [], sizes
    assert len(sizes["main"]) <= 1, sizes
    assert all(w >= 60 and h >= 60 for w, h in sizes["main"]), sizes
    return sizes


@pytest.mark.parametrize("language", ["zh", "en"])
async def test_a_request_from_ask_to_confirmed_moves_the_reported_minutes(
    browser: Browser, server: Server, api: Api, language: str
) -> None:
    words = WORDS[language]
    community = await api.community()
    resident = await person(api, community, "resident", "volunteer", name="周桂兰", minutes=300)
    volunteer = await person(api, community, "volunteer", name="王芳", minutes=30)
    asking = await signed_page(browser, server, resident, language)
    helping = await signed_page(browser, server, volunteer, language)
    resident_before, volunteer_before = await balance(asking), await balance(helping)

    await asking.goto("/ask")
    await asking.click(f"a.choice:has-text('{words['meals']}')")
    assert await asking.input_value("#minutes") == "60"  # the service type's usual minutes
    await asking.click("button.main")
    await asking.click("button.main")  # the confirmation step
    assert words["meals"] in await asking.inner_text("#result")

    await helping.goto("/requests")
    assert "周桂兰" in await helping.inner_text("main")
    await helping.click(f"button:has-text('{words['claim']}')")
    assert "周桂兰" in await helping.inner_text("#result")
    await helping.goto("/tasks")
    await helping.click(f"button:has-text('{words['check_in']}')")
    await helping.goto("/tasks")
    await helping.fill("input[name=minutes]", "60")
    await helping.click(f"button:has-text('{words['report']}')")
    assert await balance(helping) == volunteer_before  # nothing moves before the resident confirms

    await asking.goto("/my-requests")
    await asking.click("a[href^='/my-requests/']")
    await asking.check("input[name=rating][value='5']")
    await asking.click("button.main")
    assert words["five"] in await asking.inner_text("main")  # the confirmation step
    await asking.click("button.main")
    result = await asking.inner_text("#result")
    assert words["paid"] in result
    assert "王芳" in result
    assert await balance(asking) == resident_before - 60
    assert await balance(helping) == volunteer_before + 60
    await asking.context.close()
    await helping.context.close()


@pytest.mark.parametrize("language", ["zh", "en"])
async def test_a_gift_to_a_relative_and_one_to_a_stranger_refused(
    browser: Browser, server: Server, api: Api, language: str
) -> None:
    words = WORDS[language]
    community = await api.community(gift_scope="relatives")
    giver = await person(api, community, "volunteer", name="周彦芳", minutes=300)
    daughter = await person(api, community, "resident", name="王芳")
    stranger = await person(api, community, "resident", name="李强")
    await relate(api, giver, daughter)
    page = await signed_page(browser, server, giver, language)
    await page.goto("/gift")
    await page.check("input[value=number]")
    await page.fill("#member_no", stranger.member_no)
    await page.fill("#hours", "1")
    await page.click("button.main")
    problem = page.locator("fieldset #to-problem")  # said inside the field it is about
    assert words["not_relative"] in await problem.inner_text()
    assert await page.get_attribute("fieldset.radios", "aria-describedby") == "to-problem"
    await page.check(f"input[value='m:{daughter.member.id}']")
    await page.fill("#hours", "2")
    await page.click("button.main")
    check = await page.inner_text("main")
    assert "周彦芳" in check
    assert "王芳" in check  # both names before anything moves
    await page.dblclick("button.main")  # a double click moves the hours once
    await page.wait_for_selector("#result")
    assert words["given"] in await page.inner_text("#result")
    assert await api.balance(giver.member.account_id) == 180
    assert await api.balance(daughter.member.account_id) == 120
    assert await api.balance(stranger.member.account_id) == 0
    await page.context.close()


async def test_a_resubmitted_confirmation_and_a_form_without_its_token(
    browser: Browser, server: Server, api: Api
) -> None:
    community = await api.community()
    giver = await person(api, community, "volunteer", name="周彦芳", minutes=300)
    page = await signed_page(browser, server, giver, "en")
    await page.goto("/gift")
    await page.check("input[value=pool]")
    await page.fill("#hours", "1")
    await page.click("button.main")
    await page.click("button.main")
    await page.wait_for_selector("#result")
    await page.go_back()  # the confirmation again, as the browser kept it; sent once more
    await page.click("button.main")
    await page.wait_for_selector("#result")
    assert await api.balance(giver.member.account_id) == 240
    await page.goto("/gift")
    await page.locator("main input[name=csrf_token]").evaluate("e => e.remove()")
    await page.check("input[value=pool]")
    await page.fill("#hours", "1")
    async with page.expect_response("**/gift") as answer:
        await page.click("button.main")
    assert (await answer.value).status == 403
    assert await api.balance(giver.member.account_id) == 240
    await page.context.close()


async def _people(api: Api) -> tuple[Person, Person]:
    """A resident (with a phone and a birth date) with four requests; a volunteer with a task of each kind."""
    community = await api.community()
    resident = await person(
        api, community, "resident", "volunteer", name="周桂兰", minutes=3000, phone="13912345678",
        birth_date="1941-03-05",
    )  # fmt: skip
    volunteer = await person(api, community, "volunteer", name="王芳", minutes=30)
    relative = await person(api, community, "resident", name="李强")
    await relate(api, resident, relative)
    ids = []
    for ahead in range(13, 17):
        day = (date.today() + timedelta(days=ahead)).isoformat()
        made = await api.post(
            "/v1/service-requests", resident.member.token,
            {"member_id": resident.member.id, "service_type": "meals", "scheduled_at": f"{day}T09:00:00+08:00",
             "funding": "own"},
        )  # fmt: skip
        assert made.status_code == 201, made.text
        ids.append(made.json()["id"])
    for request_id in ids[:3]:
        assert (await api.post(f"/v1/service-requests/{request_id}/assign", volunteer.member.token, {})).is_success
    for request_id in ids[:2]:
        assert (await api.post(f"/v1/service-requests/{request_id}/check-in", volunteer.member.token)).is_success
    reported = await api.post(f"/v1/service-requests/{ids[0]}/report", volunteer.member.token, {"minutes": 60})
    assert reported.status_code == 200, reported.text
    return resident, volunteer


async def test_every_member_page_passes_axe_and_is_large_enough(
    browser: Browser, server: Server, api: Api, screenshot_dir: Path
) -> None:
    resident, volunteer = await _people(api)
    for language in LOCALES:
        for width_name, width in WIDTHS.items():
            tag = f"{language}-{width_name}"
            seen = await visit(browser, server, language, width)
            page = await seen.context.new_page()
            await sign_in(page, resident)
            await page.wait_for_url("**/me")
            await check_page(page, f"me-member-{tag}", screenshot_dir)

            async def resident_page(name: str) -> None:
                await check_page(page, f"{name}-{tag}", screenshot_dir)  # noqa: B023 - used at once
                await resident_text_sizes(page)  # noqa: B023

            await page.goto("/ask")
            await resident_page("ask")
            await page.click(f"a.choice:has-text('{WORDS[language]['meals']}')")
            await resident_page("ask-when")
            await page.evaluate("document.querySelector('#minutes').type = 'text'")
            await page.fill("#minutes", "abc")
            await page.click("button.main")
            await resident_page("ask-refused")
            await page.fill("#minutes", "60")
            await page.click("button.main")
            await resident_page("ask-confirm")
            await page.click("button.main")
            await resident_page("ask-done")
            await page.goto("/my-requests")
            await resident_page("my-requests")
            await page.click("a[href^='/my-requests/']:has-text('" + ("确认" if language == "zh" else "Confirm") + "')")
            await resident_page("my-request-reported")
            await page.check("input[name=rating][value='4']")
            await page.click("button.main")
            await resident_page("confirm-service")
            await page.goto("/gift")
            await resident_page("gift")
            await page.check("input[value=number]")
            await page.fill("#member_no", "999999")
            await page.fill("#hours", "1")
            await page.click("button.main")
            await resident_page("gift-refused")
            await page.check("input[name=to] >> nth=0")
            await page.fill("#hours", "1")
            await page.click("button.main")
            await resident_page("gift-confirm")
            await page.click("button.main")
            await resident_page("gift-done")
            await page.goto("/requests")
            await check_page(page, f"requests-{tag}", screenshot_dir)
            await seen.context.close()

            seen = await visit(browser, server, language, width)
            page = await seen.context.new_page()
            await sign_in(page, volunteer)
            await page.wait_for_url("**/me")
            await check_page(page, f"me-volunteer-{tag}", screenshot_dir)
            await page.goto("/requests")
            await check_page(page, f"requests-volunteer-{tag}", screenshot_dir)
            # Without the forms' CSRF tokens: 64 random hex digits hold "1941" about once in a thousand.
            source = re.sub(r"[0-9a-f]{64}", "", await page.content())
            assert "周桂兰" in source
            assert "13912345678" not in source
            assert "1941" not in source
            await page.goto("/tasks")
            await check_page(page, f"tasks-{tag}", screenshot_dir)
            await page.goto("/ask")
            await check_page(page, f"not-for-you-{tag}", screenshot_dir)
            assert seen.foreign() == [], "requests left the service"
            await seen.context.close()
