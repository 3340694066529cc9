"""The pages' Jinja2 templates, with gettext callables that read the request's language."""

from __future__ import annotations

from pathlib import Path

from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig
from markupsafe import Markup

from timebank.pages.i18n import gettext, ngettext
from timebank.pages.words import minutes_in_words

TEMPLATE_DIR = Path(__file__).parent / "templates"


def _configure(engine: JinjaTemplateEngine) -> None:
    environment = engine.engine
    environment.add_extension("jinja2.ext.i18n")
    environment.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]
    environment.globals["words"] = minutes_in_words
    environment.globals["data"] = data


def data(text: str, value: int | None = None) -> Markup:
    """A name or number inside a translated sentence: escaped, and marked as no catalog's to translate."""
    if value is not None:
        return Markup('<data value="{}">{}</data>').format(value, text)
    return Markup('<span translate="no">{}</span>').format(text)


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(directory=TEMPLATE_DIR, engine=JinjaTemplateEngine, engine_callback=_configure)
