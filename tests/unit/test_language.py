"""Accept-Language: Chinese for any Chinese range the caller prefers, English otherwise, never an error."""

from __future__ import annotations

import pytest

from timebank.i18n.language import MAX_HEADER_CHARS, negotiate


@pytest.mark.parametrize(
    ("headers", "language"),
    [
        # No header, or nothing we offer: English.
        pytest.param([], "en", id="absent"),
        pytest.param([""], "en", id="empty"),
        pytest.param(["en"], "en", id="en"),
        pytest.param(["en-US,en;q=0.9"], "en", id="en-US"),
        pytest.param(["*"], "en", id="wildcard"),
        pytest.param(["fr-FR, de;q=0.8"], "en", id="unoffered"),
        # Any Chinese range: Chinese (Simplified is what we have; it reads better than English).
        pytest.param(["zh"], "zh", id="zh"),
        pytest.param(["zh-CN"], "zh", id="zh-CN"),
        pytest.param(["ZH-cn"], "zh", id="case-insensitive"),
        pytest.param(["zh-Hans"], "zh", id="zh-Hans"),
        pytest.param(["zh-Hans-CN"], "zh", id="zh-Hans-CN"),
        pytest.param(["zh-TW"], "zh", id="zh-TW"),
        pytest.param(["zh-HK;q=0.5"], "zh", id="zh-HK"),
        # What a browser in China sends.
        pytest.param(["zh-CN,zh;q=0.9,en;q=0.8,en-GB;q=0.7,en-US;q=0.6"], "zh", id="browser-zh"),
        pytest.param(["en-US,en;q=0.9,zh-CN;q=0.8,zh;q=0.7"], "en", id="browser-en"),
        # Quality decides; then the order written; then English.
        pytest.param(["en;q=0.5, zh;q=0.8"], "zh", id="higher-q-zh"),
        pytest.param(["zh;q=0.5, en;q=0.8"], "en", id="higher-q-en"),
        pytest.param(["zh, en"], "zh", id="order-zh-first"),
        pytest.param(["en, zh"], "en", id="order-en-first"),
        pytest.param(["zh-TW;q=0.2, zh;q=0.9, en;q=0.5"], "zh", id="best-range-of-a-language"),
        pytest.param(["zh;q=1.000, en;q=0.999"], "zh", id="three-decimals"),
        # q=0 means "not this one".
        pytest.param(["zh;q=0"], "en", id="zh-refused"),
        pytest.param(["zh;q=0, *"], "en", id="zh-refused-wildcard"),
        pytest.param(["en;q=0, *"], "zh", id="en-refused-wildcard"),
        pytest.param(["en;q=0, zh;q=0"], "en", id="all-refused"),
        pytest.param(["*;q=0.1, zh;q=0.5"], "zh", id="wildcard-lower"),
        pytest.param(["fr, *;q=0.5, zh;q=0.4"], "en", id="wildcard-covers-en"),
        # Several header lines are one list.
        pytest.param(["fr", "zh-CN"], "zh", id="two-lines"),
        # Malformed elements are skipped, the rest still counts; nothing malformed is an error.
        pytest.param(["zh;q=abc"], "en", id="bad-q"),
        pytest.param(["zh;q=1.5"], "en", id="q-above-1"),
        pytest.param(["zh;q=-1"], "en", id="q-negative"),
        pytest.param(["zh;q=0.1234"], "en", id="q-four-decimals"),
        pytest.param(["zh;q=abc, en;q=0.1, zh-CN;q=0.2"], "zh", id="bad-element-skipped"),
        pytest.param(["zh_CN"], "en", id="underscore"),
        pytest.param(["中文"], "en", id="not-ascii"),
        pytest.param([",,;;,="], "en", id="punctuation"),
        pytest.param([";q=1"], "en", id="no-tag"),
        pytest.param(["zh-"], "en", id="empty-subtag"),
        pytest.param(["zh-toolongsubtag"], "en", id="long-subtag"),
        pytest.param(["zh;level=1"], "zh", id="other-parameter"),
        pytest.param(["zh ; q = 0.5 "], "zh", id="spaces"),
        pytest.param(["en-\x00, zh"], "zh", id="nul"),
        pytest.param(["zh," + "x" * MAX_HEADER_CHARS], "en", id="oversized"),
    ],
)
def test_negotiate(headers: list[str], language: str) -> None:
    assert negotiate(headers) == language
