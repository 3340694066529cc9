"""The pages' language: Chinese (zh-CN) by default, English by a visible switch or Accept-Language.

Every word on a page comes from the gettext catalog in locale/ (English msgids, Chinese msgstrs),
read once at start with Babel. The language of the request being drawn lives in a ContextVar, set
by an async hook of the pages' router (a sync hook's value would never reach the rendering).
"""

from __future__ import annotations

import contextvars
from functools import cache
from pathlib import Path
from typing import Literal

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from timebank.i18n.language import negotiate

PageLanguage = Literal["zh", "en"]
LOCALE_DIR = Path(__file__).parent / "locale"
PO_FILE = LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "messages.po"
# The visible switch remembers its choice in this cookie (a year); it outranks Accept-Language.
LANGUAGE_COOKIE = "tb_lang"
HTML_LANG: dict[PageLanguage, str] = {"zh": "zh-CN", "en": "en"}

current_language: contextvars.ContextVar[PageLanguage] = contextvars.ContextVar("page_language", default="zh")


@cache
def chinese() -> dict[str, str]:
    """msgid -> msgstr of the Chinese catalog (entries left empty are left out: the test refuses them)."""
    with PO_FILE.open("rb") as handle:
        catalog: Catalog = read_po(handle, locale="zh_CN")
    found: dict[str, str] = {}
    for message in catalog:
        if not message.id:
            continue
        msgid = message.id[0] if isinstance(message.id, tuple) else message.id
        msgstr = message.string[0] if isinstance(message.string, tuple) else message.string
        if msgstr:
            found[str(msgid)] = str(msgstr)
    return found


def gettext(message: str) -> str:
    if current_language.get() == "zh":
        return chinese().get(message, message)
    return message


def ngettext(singular: str, plural: str, count: int) -> str:
    if current_language.get() == "zh":
        return chinese().get(singular, singular)
    return singular if count == 1 else plural


def choose(cookie: str | None, accept_language: list[str]) -> PageLanguage:
    """The switch's cookie first; then Accept-Language when it prefers English; Chinese otherwise."""
    if cookie in ("zh", "en"):
        return cookie  # type: ignore[return-value]
    if accept_language and negotiate(accept_language) == "en" and "en" in ",".join(accept_language).lower():
        return "en"
    return "zh"
