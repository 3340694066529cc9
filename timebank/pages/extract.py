"""The pages' messages as Babel extracts them from the templates and timebank/pages/*.py."""

from __future__ import annotations

from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir

PAGES = Path(__file__).parent
METHODS = [("templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")]


def extracted() -> Catalog:
    catalog = Catalog(locale="zh_CN", project="timebank", domain="messages")
    for filename, lineno, message, _comments, _context in extract_from_dir(PAGES, METHODS):
        catalog.add(message, locations=[(filename, lineno)])
    return catalog
