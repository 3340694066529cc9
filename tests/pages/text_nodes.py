"""The words a person reads on a page: text nodes and the attributes read aloud, minus names and data.

Elements marked translate="no" (names, numbers) and elements in another language (the language
switch, lang="en" on a Chinese page) are left out: no catalog translates them.
"""

from __future__ import annotations

from html.parser import HTMLParser

SPOKEN_ATTRIBUTES = ("aria-label", "title", "placeholder", "alt")
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _Words(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page_lang: str | None = None
        self.stack: list[bool] = []  # per open element: whether its text is left out
        self.words: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "html":
            self.page_lang = values.get("lang")
        lang = values.get("lang")
        skipped = (
            (bool(self.stack) and self.stack[-1])
            or tag in ("script", "style")
            or values.get("translate") == "no"
            or (tag != "html" and lang is not None and lang != self.page_lang)
        )
        if not skipped:
            self.words += [v for name in SPOKEN_ATTRIBUTES if (v := values.get(name))]
            if tag == "input" and values.get("type") in ("submit", "button") and values.get("value"):
                self.words.append(values["value"] or "")
        if tag not in VOID:
            self.stack.append(skipped)

    def handle_endtag(self, tag: str) -> None:
        if tag not in VOID and self.stack:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if data.strip() and not (self.stack and self.stack[-1]):
            self.words.append(data.strip())


def words_of(html: str) -> list[str]:
    parser = _Words()
    parser.feed(html)
    return parser.words
