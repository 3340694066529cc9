"""Problems in the caller's language: the English problem is canonical, Chinese is rendered from it.

Only `title`, `detail` and `errors[].message` change; `code`, `type`, `status`, field paths and every
extra member stay as they are. The rendering is a pure function of the English problem, so a
remembered problem (stored in English) reads the same each time it is replayed in a language.
"""

from __future__ import annotations

import msgspec
import structlog

from timebank.errors import CODES, FieldError, Problem
from timebank.i18n.language import Language
from timebank.i18n.zh import CATALOG

log = structlog.get_logger(__name__)

# Log lines are bounded; the text may come from a caller.
MAX_LOGGED_CHARS = 200

_TITLES_ZH = {entry.title: entry.title_zh for entry in CODES.values()}


def _translate(text: str, *, sentence: bool) -> str:
    translated = CATALOG.translate(text)
    if translated is not None:
        return translated
    # A message without a catalog entry still leaves in Chinese, with the English for whoever helps.
    # The catalog test should have caught it; the log says which one slipped through.
    log.warning("problem_text_untranslated", language="zh", text=text[:MAX_LOGGED_CHARS])
    return f"请求未能完成（原文：{text}）。" if sentence else f"取值无效（原文：{text}）"


def _title(problem: Problem) -> str:
    entry = CODES.get(problem.code)
    if entry is not None and entry.title == problem.title:
        return entry.title_zh
    return _TITLES_ZH.get(problem.title) or _translate(problem.title, sentence=True)


def _where(field: str) -> str:
    return "请求内容" if field == "$" else f"字段 {field}"


def _detail(problem: Problem, errors: list[FieldError] | None) -> str:
    english = problem.errors or []
    # A validation problem's detail lists its errors ("$.a: ...; $.b: ..."): say each in Chinese.
    if errors and problem.detail == "; ".join(f"{e.field}: {e.message}" for e in english):
        return "；".join(f"{_where(e.field)}：{e.message}" for e in errors) + "。"
    return _translate(problem.detail, sentence=True)


def localize_problem(problem: Problem, language: Language) -> Problem:
    """`problem` (in English) as read in `language`."""
    if language == "en":
        return problem
    errors = (
        [msgspec.structs.replace(e, message=_translate(e.message, sentence=False)) for e in problem.errors]
        if problem.errors
        else problem.errors
    )
    return msgspec.structs.replace(problem, title=_title(problem), detail=_detail(problem, errors), errors=errors)
