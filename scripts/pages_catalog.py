"""Extract every message of the pages (templates and timebank/pages/*.py) and update the Chinese
catalog timebank/pages/locale/zh_CN/LC_MESSAGES/messages.po, keeping the translations it has.

Usage: python scripts/pages_catalog.py        (new messages arrive with an empty msgstr: translate them;
tests/pages/test_catalog.py fails on any left empty)
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
PAGES = ROOT / "timebank" / "pages"
PO_FILE = PAGES / "locale" / "zh_CN" / "LC_MESSAGES" / "messages.po"
METHODS = [("templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")]


def extracted() -> Catalog:
    catalog = Catalog(locale="zh_CN", project="timebank", domain="messages")
    for filename, lineno, message, _comments, _context in extract_from_dir(PAGES, METHODS):
        catalog.add(message, locations=[(filename, lineno)])
    return catalog


def main() -> None:
    template = extracted()
    with PO_FILE.open("rb") as handle:
        current = read_po(handle, locale="zh_CN")
    current.update(template, no_fuzzy_matching=True)
    current.obsolete.clear()
    with PO_FILE.open("wb") as handle:
        write_po(handle, current, width=0, omit_header=False, sort_output=True, include_lineno=False)


if __name__ == "__main__":
    main()
