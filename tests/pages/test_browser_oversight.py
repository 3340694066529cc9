"""Journey (d) in real Chromium, in Chinese and in English: an auditor signs in, reads the audit
trail and the monthly report with its charts, downloads the CSV, and finds nothing that writes.
Each page of coordinators and auditors passes axe-core at 1280 px and 375 px and is photographed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, Page

from tests.client import Api
from tests.e2e.server import Server, running_server
from tests.pages.helpers import Resident
from tests.pages.people import person
from tests.pages.test_browser import LOCALES, WIDTHS, browser, check_page, sign_in, visit
from timebank.log.note import Signer

pytestmark = [pytest.mark.browser, pytest.mark.slow]
__all__ = ["browser"]  # the module's browser fixture, as test_browser has it


@pytest.fixture(scope="module")
async def server(database: str, admin_token: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    """The service with a log key, so its sealer signs checkpoints for the audit page to show."""
    folder = tmp_path_factory.mktemp("log")
    key = folder / "log.key"
    key.write_text(Signer.generate("timebank.test/log").encode() + "\n")
    env = {"TIMEBANK_LOG_KEY_FILE": str(key), "TIMEBANK_CHECKPOINT_DIR": str(folder / "checkpoints")}
    async with running_server(database, TIMEBANK_ADMIN_TOKEN=admin_token, **env) as started:
        yield started


async def _signed_checkpoint(api: Api) -> None:
    """Wait (at most 30 s) until the sealer has signed a checkpoint."""
    for _ in range(300):
        if (await api.get("/v1/log/checkpoint", None)).status_code == 200:
            return
        await asyncio.sleep(0.1)
    pytest.fail("no checkpoint was signed within 30 s")


async def _community_with_a_month(api: Api) -> tuple[Resident, Resident, str]:
    """An auditor and a resident of a community whose month has hours earned and redeemed in two grids."""
    community = await api.community()
    auditor = await person(api, community, "auditor", name="赵审计")
    resident = await person(api, community, "resident", name="钱居民")
    east = await api.member(community, "volunteer", "resident", name="王志愿", grid="东区")
    west = await api.member(community, "volunteer", name="孙志愿", grid="2")
    assert (await api.credit(east, 300)).status_code == 201
    assert (await api.credit(west, 120)).status_code == 201
    redeemed = await api.post("/v1/redemptions", api.admin_token, {"member_id": east.id, "minutes": 90})
    assert redeemed.status_code == 201, redeemed.text
    month = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    return auditor, resident, month


async def _post_forms(page: Page) -> list[str]:
    actions: list[str] = await page.eval_on_selector_all(
        "form", "forms => forms.filter(f => f.method.toLowerCase() === 'post').map(f => f.getAttribute('action'))"
    )
    return actions


async def test_an_auditor_reads_the_trail_and_the_report_and_downloads_the_csv(
    browser: Browser, server: Server, api: Api, screenshot_dir: Path, tmp_path: Path
) -> None:
    auditor, resident, month = await _community_with_a_month(api)
    await _signed_checkpoint(api)
    for language in LOCALES:
        for width_name, width in WIDTHS.items():
            tag = f"{language}-{width_name}"
            seen = await visit(browser, server, language, width)
            page = await seen.context.new_page()
            await sign_in(page, auditor)
            await page.wait_for_url("**/audit")
            assert await page.locator("ol.events li").count() > 0
            assert int(await page.get_attribute("#checkpoint-size", "value") or 0) >= 2
            assert len(await page.inner_text("#checkpoint-root")) == 44  # base64 of 32 bytes
            assert await _post_forms(page) == ["/logout"], "an auditor's page has nothing that writes"
            await check_page(page, f"audit-{tag}", screenshot_dir)

            await page.click("nav.sections a[href='/staff/reports']")
            await page.wait_for_url("**/staff/reports")
            await page.fill("#month", month)
            await page.click("form.filters button")
            await page.wait_for_url(f"**/staff/reports?month={month}")
            charts = page.locator("svg.chart")
            assert await charts.count() == 2
            assert await page.locator("svg.chart rect[height]").count() >= 4  # bars, not only the hatch
            for index in range(2):
                labelled = await charts.nth(index).get_attribute("aria-labelledby")
                assert labelled, "each chart is labelled by its title and description"
            grid_rows = await page.locator("#grid-table-title + thead + tbody tr").count()
            assert grid_rows == 3, "the chart's numbers are in a table too (grids 1, 2 and 东区)"
            east = "东区" if language == "zh" else "Grid 东区"
            assert east in await page.locator("#grid-title + ul + figure svg").text_content()
            assert await _post_forms(page) == ["/logout"], "the report has nothing that writes"
            await check_page(page, f"reports-{tag}", screenshot_dir)

            async with page.expect_download() as download_info:
                await page.click("a[href^='/staff/reports/csv']")
            download = await download_info.value
            saved = tmp_path / f"{tag}.csv"
            await download.save_as(saved)
            raw = saved.read_bytes()
            assert raw.startswith("\ufeff".encode()), "a byte order mark, for Excel"
            text = raw.decode("utf-8")
            assert "东区" in text, "Chinese intact"
            assert ("获得时长（分钟）" if language == "zh" else "earned_minutes") in text
            assert ",300," in text.replace("\r\n", ",")
            assert seen.foreign() == []
            await seen.context.close()

        for width_name, width in WIDTHS.items():
            seen = await visit(browser, server, language, width)
            page = await seen.context.new_page()
            await page.goto("/login?token")
            await check_page(page, f"login-token-{language}-{width_name}", screenshot_dir)
            await seen.context.close()
        for width_name, width in WIDTHS.items():
            seen = await visit(browser, server, language, width)
            page = await seen.context.new_page()
            await sign_in(page, resident)
            await page.wait_for_url("**/me")
            response = await page.goto("/audit")
            assert response is not None
            assert response.status == 403
            await check_page(page, f"away-{language}-{width_name}", screenshot_dir)
            await seen.context.close()
