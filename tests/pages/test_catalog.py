"""Every word on a page comes from the message catalog: a page drawn in Chinese shows no English
word and a page drawn in English no Chinese one (names and data are marked translate="no"), and no
catalog entry is left empty or missing."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po
from litestar.testing import AsyncTestClient

from tests.client import Api
from tests.pages.helpers import csrf_of, resident_with_pin, sign_in
from tests.pages.text_nodes import words_of
from timebank.pages.extract import extracted
from timebank.pages.i18n import PO_FILE

LATIN = re.compile(r"[A-Za-z]{2,}")
HAN = re.compile(r"[\u3400-\u9fff]")
LANGUAGES = {"zh": {"Accept-Language": "zh-CN"}, "en": {"Accept-Language": "en"}}


def untranslated(html: str, language: str) -> list[str]:
    foreign = LATIN if language == "zh" else HAN
    return [word for word in words_of(html) if foreign.search(word)]


def test_no_catalog_entry_is_empty_or_missing() -> None:
    with PO_FILE.open("rb") as handle:
        catalog = read_po(handle, locale="zh_CN")
    empty = [m.id for m in catalog if m.id and not all(m.string if isinstance(m.string, tuple) else [m.string])]
    assert empty == []
    known = {m.id[0] if isinstance(m.id, tuple) else m.id for m in catalog if m.id}
    missing = [m.id for m in extracted() if m.id and (m.id[0] if isinstance(m.id, tuple) else m.id) not in known]
    assert missing == [], "run python scripts/pages_catalog.py and translate the new messages"


def test_the_checker_finds_hard_coded_words() -> None:
    page = '<html lang="zh-CN"><p>余额 Balance</p><span translate="no">Wang Fang</span><a lang="en">English</a></html>'
    assert untranslated(page, "zh") == ["余额 Balance"]
    assert untranslated('<html lang="en"><button aria-label="关闭">x</button></html>', "en") == ["关闭"]


async def _pages(pages: AsyncTestClient[Any], api: Api, headers: dict[str, str]) -> dict[str, str]:
    """Every page this slice draws, as one reader sees it."""
    pages.cookies.clear()
    drawn: dict[str, str] = {}
    resident = await resident_with_pin(api, 75)
    drawn["/login"] = (await pages.get("/login", headers=headers)).text
    drawn["/login wrong"] = (await sign_in(pages, resident, pin="999999", **headers)).text
    empty = {"csrf_token": csrf_of(drawn["/login"]), "community": "", "member_no": "", "pin": ""}
    drawn["/login missing"] = (await pages.post("/login", data=empty, headers=headers)).text
    drawn["refused"] = (await pages.post("/login", data={}, headers=headers)).text
    assert (await sign_in(pages, resident, **headers)).status_code == 303
    drawn["/me"] = (await pages.get("/me", headers=headers)).text
    drawn["/history"] = (await pages.get("/history", headers=headers)).text
    for _ in range(5):
        await sign_in(pages, resident, pin="999999", **headers)
    pages.cookies.clear()
    drawn["/login locked"] = (await sign_in(pages, resident, pin="999999", **headers)).text
    return drawn


async def test_every_word_on_every_page_is_translated(pages: AsyncTestClient[Any], api: Api) -> None:
    for language, headers in LANGUAGES.items():
        drawn = await _pages(pages, api, headers)
        assert "locked" in drawn["/login locked"] or "锁定" in drawn["/login locked"]
        found = {name: words for name, html in drawn.items() if (words := untranslated(html, language))}
        assert found == {}, f"{language}: words not from the catalog"
        lang = 'lang="zh-CN"' if language == "zh" else 'lang="en"'
        assert all(f"<html {lang}>" in html for html in drawn.values())


def test_the_templates_hold_no_bare_words() -> None:
    """A template's text outside {{ }} and {% %} is markup only (a word there would skip the catalog)."""
    for template in (Path(__file__).parents[2] / "timebank" / "pages" / "templates").rglob("*.html"):
        source = re.sub(r"\{\{.*?\}\}|\{%.*?%\}", " ", template.read_text(encoding="utf-8"), flags=re.S)
        source = re.sub(r"<[^>]*>", " ", source)
        words = [w for w in re.findall(r"[A-Za-z]{2,}|[\u3400-\u9fff]+", source) if w not in ("English", "中文")]
        assert words == [], template.name
