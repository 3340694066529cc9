"""The pages' Jinja2 templates, with gettext callables that read the request's language."""

from __future__ import annotations

from pathlib import Path

from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

from timebank.pages.i18n import gettext, ngettext
from timebank.pages.words import minutes_in_words

TEMPLATE_DIR = Path(__file__).parent / "templates"


def _configure(engine: JinjaTemplateEngine) -> None:
    environment = engine.engine
    environment.add_extension("jinja2.ext.i18n")
    environment.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]
    environment.globals["words"] = minutes_in_words


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(directory=TEMPLATE_DIR, engine=JinjaTemplateEngine, engine_callback=_configure)
