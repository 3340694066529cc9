"""The pages in real Chromium against a real `timebank serve` process, in Chinese and in English.

One browser for the module. Each page is checked by axe-core (0 serious or critical violations) at
1280 px and 375 px, measured (body text ≥ 20 px, every button and link ≥ 44 × 44 px, the main action
≥ 60 px high), photographed into the screenshot folder, and every request it makes must stay on the
service's own host.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests.client import Api
from tests.e2e.server import Server, running_server
from tests.pages.browser import chromium_path
from tests.pages.helpers import PIN, Resident, resident_with_pin
from tests.pg import refusing_connections

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WIDTHS = {"wide": 1280, "phone": 375}
LOCALES = {"zh": "zh-CN", "en": "en-GB"}
AXE = Axe()
# axe-core takes a second or two per page on a busy machine; evaluate has no timeout of its own.
AXE_SECONDS = 60


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    executable = chromium_path()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        await launched.close()


@pytest.fixture(scope="module")
async def server(database: str, admin_token: str) -> AsyncIterator[Server]:
    async with running_server(database, TIMEBANK_ADMIN_TOKEN=admin_token) as started:
        yield started


class Visit:
    """A browser context in one language and width that records every request its pages make."""

    def __init__(self, context: BrowserContext, server: Server) -> None:
        self.context = context
        self.server = server
        self.requested: list[str] = []
        context.on("request", lambda request: self.requested.append(request.url))

    def foreign(self) -> list[str]:
        own = urlsplit(self.server.url).netloc
        return [url for url in self.requested if urlsplit(url).netloc != own and not url.startswith("data:")]


async def visit(browser: Browser, server: Server, language: str, width: int, *, scripts: bool = True) -> Visit:
    """A new context; axe-core needs scripts, so only the journeys without axe turn them off."""
    context = await browser.new_context(
        base_url=server.url, locale=LOCALES[language], viewport={"width": width, "height": 900},
        extra_http_headers={"Accept-Language": LOCALES[language]}, java_script_enabled=scripts,
    )  # fmt: skip
    return Visit(context, server)


async def sign_in(page: Page, resident: Resident, pin: str = PIN) -> None:
    await page.goto("/login")
    await page.fill("#community", resident.community.slug)
    await page.fill("#member_no", resident.member_no)
    await page.fill("#pin", pin)
    await page.click("button.main")


async def check_page(page: Page, name: str, folder: Path) -> None:
    """axe-core, sizes and a screenshot of the page as it is now."""
    assert await page.locator("script").count() == 0, (name, "the pages work without scripts: they have none")
    results = await asyncio.wait_for(AXE.run(page), AXE_SECONDS)
    serious = [v for v in results.response["violations"] if v.get("impact") in ("serious", "critical")]
    assert serious == [], (name, [(v["id"], v["help"], [n["target"] for n in v["nodes"]]) for v in serious])
    sizes: dict[str, Any] = await asyncio.wait_for(
        page.evaluate(
            """() => ({
            body: parseFloat(getComputedStyle(document.body).fontSize),
            lineHeight: parseFloat(getComputedStyle(document.body).lineHeight) /
                        parseFloat(getComputedStyle(document.body).fontSize),
            small: [...document.querySelectorAll('a, button, input:not([type=hidden])')]
                .filter(e => e.offsetParent !== null && !e.matches('.skip'))
                .map(e => [e.textContent.trim() || e.name, e.getBoundingClientRect()])
                .filter(([, r]) => r.width < 44 || r.height < 44)
                .map(([t, r]) => `${t} ${r.width}x${r.height}`),
            main: [...document.querySelectorAll('.main')].map(e => e.getBoundingClientRect().height),
            overflow: document.documentElement.scrollWidth > document.documentElement.clientWidth,
        })"""
        ),
        AXE_SECONDS,
    )
    assert sizes["body"] >= 20, (name, sizes)
    assert sizes["lineHeight"] >= 1.5, (name, sizes)
    assert sizes["small"] == [], (name, sizes)
    assert all(height >= 60 for height in sizes["main"]), (name, sizes)
    assert not sizes["overflow"], (name, "the page scrolls sideways")
    await page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


async def test_a_resident_signs_in_and_sees_the_right_balance_everywhere(
    browser: Browser, server: Server, api: Api, screenshot_dir: Path
) -> None:
    resident = await resident_with_pin(api, 750)
    for language in LOCALES:
        for width_name, width in WIDTHS.items():
            seen = await visit(browser, server, language, width)
            page = await seen.context.new_page()
            tag = f"{language}-{width_name}"
            await page.goto("/login")
            await check_page(page, f"login-{tag}", screenshot_dir)
            await sign_in(page, resident)
            await page.wait_for_url("**/me")
            balance = page.locator("data#balance")
            assert await balance.get_attribute("value") == "750"
            words = "12 小时 30 分钟" if language == "zh" else "12 hours 30 minutes"
            assert (await balance.inner_text()).strip() == words
            assert await page.get_attribute("html", "lang") == ("zh-CN" if language == "zh" else "en")
            await check_page(page, f"me-{tag}", screenshot_dir)
            await page.click("a[href='/history']")
            await page.wait_for_url("**/history")
            await check_page(page, f"history-{tag}", screenshot_dir)
            await page.click("button:has-text('退出')" if language == "zh" else "button:has-text('Sign out')")
            await page.wait_for_url("**/login")
            assert seen.foreign() == [], "requests left the service"
            assert len(seen.requested) >= 5
            await seen.context.close()


async def test_the_language_switch_is_on_every_page(browser: Browser, server: Server) -> None:
    seen = await visit(browser, server, "zh", 375)
    page = await seen.context.new_page()
    await page.goto("/login")
    assert await page.inner_text("h1") == "登录"
    await page.click("a.switch")
    await page.wait_for_url("**/login")
    assert await page.inner_text("h1") == "Sign in"
    assert seen.foreign() == []
    await seen.context.close()


async def test_five_wrong_pins_lock_sign_in_and_say_so(
    browser: Browser, server: Server, api: Api, screenshot_dir: Path
) -> None:
    resident = await resident_with_pin(api, 60)
    for language in LOCALES:
        seen = await visit(browser, server, language, 375, scripts=False)
        page = await seen.context.new_page()
        if language == "en":  # a fresh member: the Chinese round used up the first one's tries
            resident = await resident_with_pin(api, 60)
        for attempt in range(5):
            await sign_in(page, resident, pin=f"99999{attempt}")
        problem = await page.inner_text("#sign-in-problem")
        assert ("锁定 15 分钟" in problem) if language == "zh" else ("locked for 15 minutes" in problem), problem
        await page.screenshot(path=str(screenshot_dir / f"login-locked-{language}-phone.png"), full_page=True)
        await sign_in(page, resident)  # the right PIN is refused while locked
        assert "/login" in page.url
        assert await page.locator("#sign-in-problem").count() == 1
        await seen.context.close()


async def test_a_post_without_the_csrf_token_is_refused(browser: Browser, server: Server, api: Api) -> None:
    resident = await resident_with_pin(api, 60)
    seen = await visit(browser, server, "en", 1280)
    page = await seen.context.new_page()
    await page.goto("/login")
    await page.locator("input[name=csrf_token]").evaluate("e => e.remove()")
    await page.fill("#community", resident.community.slug)
    await page.fill("#member_no", resident.member_no)
    await page.fill("#pin", PIN)
    async with page.expect_response("**/login") as answer:
        await page.click("button.main")
    assert (await answer.value).status == 403
    assert "out of date" in await page.inner_text("main")
    cookies = {c["name"]: c for c in await seen.context.cookies()}
    assert "tb_session" not in cookies
    assert cookies["tb_pre"]["httpOnly"]
    assert cookies["tb_pre"]["sameSite"] == "Lax"
    await seen.context.close()


async def test_the_api_documentation_needs_no_other_host(browser: Browser, server: Server) -> None:
    seen = await visit(browser, server, "en", 1280)
    page = await seen.context.new_page()
    await page.goto("/schema", wait_until="networkidle")
    assert seen.foreign() == [], "the API documentation page must be served by the service alone"
    await seen.context.close()


async def test_the_trouble_page_says_the_records_are_away_in_words(
    browser: Browser, fresh_db: str, server_url: str, admin_token: str, screenshot_dir: Path
) -> None:
    """With its database refusing connections, a page that reads records answers 503 with the
    trouble page (pages/trouble.py), which passes the same checks as every other page."""
    said = {"zh": "请等一分钟再试", "en": "Please wait a minute and try again"}
    async with (
        running_server(fresh_db, TIMEBANK_ADMIN_TOKEN=admin_token) as server,
        refusing_connections(server_url, fresh_db),
    ):
        for language in LOCALES:
            for width_name, width in WIDTHS.items():
                seen = await visit(browser, server, language, width)
                page = await seen.context.new_page()
                # A card's page looks its holder up: the first thing it does needs the database.
                answer = await page.goto("/login/card/no-such-card")
                assert answer is not None
                assert answer.status == 503, (answer.status, await page.content())
                assert said[language] in await page.inner_text("main")
                await check_page(page, f"trouble-{language}-{width_name}", screenshot_dir)
                assert seen.foreign() == []
                await seen.context.close()
