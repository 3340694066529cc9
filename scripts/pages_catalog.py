"""Extract every message of the pages (templates and timebank/pages/*.py) and update the Chinese
catalog timebank/pages/locale/zh_CN/LC_MESSAGES/messages.po, keeping the translations it has.

Usage: python scripts/pages_catalog.py        (new messages arrive with an empty msgstr: translate them;
tests/pages/test_catalog.py fails on any left empty)
"""

from __future__ import annotations

from babel.messages.pofile import read_po, write_po

from timebank.pages.extract import extracted
from timebank.pages.i18n import PO_FILE


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
