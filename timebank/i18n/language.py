"""Which language a caller reads: Accept-Language (RFC 9110 §12.5.4) reduced to English or Chinese.

Only two languages are offered: English, the canonical text of every message, and Simplified
Chinese. Any Chinese range (`zh`, `zh-CN`, `zh-Hans`, also `zh-TW`: Simplified reads better to them
than English) selects Chinese; anything else, `*`, no header or a header we cannot read selects
English. The header never causes an error: a malformed element is skipped, an oversized header ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

Language = Literal["en", "zh"]

# The order decides ties (equal quality, same position, e.g. `*`): English first.
LANGUAGES: tuple[Language, ...] = ("en", "zh")

# What each language is announced as in Content-Language.
CONTENT_LANGUAGE: dict[Language, str] = {"en": "en", "zh": "zh-CN"}

# Browsers send well under 200 characters; a longer header is not worth parsing.
MAX_HEADER_CHARS = 1024

_RANGE = re.compile(r"\*|[a-z]{1,8}(?:-[a-z0-9]{1,8})*", re.ASCII)
_QUALITY = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?", re.ASCII)


def _quality(params: list[str]) -> float | None:
    """The `q` parameter of one element (1 when absent), or None when it is malformed."""
    quality = 1.0
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            value = value.strip()
            if not _QUALITY.fullmatch(value):
                return None
            quality = float(value)
    return quality


def negotiate(headers: Iterable[str]) -> Language:
    """The language to answer in, given the values of every Accept-Language header of the request.

    Each language takes the highest quality of the ranges naming it (`zh-TW;q=0.2, zh;q=0.8` gives
    Chinese 0.8); `*` applies to a language no range names. The highest quality above 0 wins, then
    the range written first, then English. Nothing acceptable: English all the same (never a 406).
    """
    text = ",".join(headers)
    if len(text) > MAX_HEADER_CHARS:
        return "en"
    named: dict[Language, tuple[float, int]] = {}
    wildcard: tuple[float, int] | None = None
    for position, element in enumerate(text.split(",")):
        tag, *params = (part.strip() for part in element.split(";"))
        tag = tag.lower()
        if not _RANGE.fullmatch(tag):
            continue  # empty or malformed element
        quality = _quality(params)
        if quality is None:
            continue
        if tag == "*":
            if wildcard is None or quality > wildcard[0]:
                wildcard = (quality, position)
            continue
        primary = tag.split("-", 1)[0]
        if primary in LANGUAGES:
            language: Language = "en" if primary == "en" else "zh"
            if language not in named or quality > named[language][0]:
                named[language] = (quality, position)
    best: Language = "en"
    best_key: tuple[float, int, int] = (0.0, 0, 0)
    for rank, language in enumerate(LANGUAGES):
        found = named.get(language, wildcard)
        if found is None or found[0] <= 0:
            continue
        key = (found[0], -found[1], -rank)
        if key > best_key:
            best, best_key = language, key
    return best
