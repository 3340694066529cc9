"""The Chinese catalog covers every message the service can send, and holds nothing else.

Our messages are found by reading the sources (tests/sources.py); the libraries' messages by making
msgspec and Litestar produce them. A message without its catalog line fails here, by name and place.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import string
import uuid
from datetime import date
from typing import Annotated, Any

import msgspec
import pytest
import structlog
from litestar.exceptions import HTTPException, MethodNotAllowedException, NotFoundException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge

import timebank
from tests.language import english_left, has_chinese, has_no_chinese, reads_as_chinese
from tests.sources import Message, messages, python_literals, sql_literals
from timebank.db import CONSTRAINT_CODES, CONSTRAINT_DETAILS
from timebank.errors import CODES, DomainError, FieldError, Problem
from timebank.http.body import field_errors
from timebank.http.problems import HTTP_STATUS_CODES, to_domain_error
from timebank.http.types import AwareDatetime, MemberRole, Name, Phone, Request, Slug
from timebank.i18n.catalog import Catalog, CatalogError, Derived, Kind, Template, skeleton
from timebank.i18n.problems import localize_problem
from timebank.i18n.zh import (
    CATALOG,
    CONSTRAINTS,
    KINDS,
    LITESTAR_MESSAGES,
    MESSAGES,
    MSGSPEC_MESSAGES,
    PATTERNS,
)

CATALOG_FILE = "timebank/i18n/zh.py"


def _placeholders_out(translation: str) -> str:
    return re.sub(r"\{[a-z_]+\}", " ", translation)


def _as_template(message: Message) -> str:
    """A catalog line to start from, for the failure message."""
    count = iter(range(1, 100))
    english = re.sub(r"\{\}", lambda _: f"{{value{next(count)}}}", message.skeleton)
    return f'    "{english}": "<中文>",'


# --- our messages ---------------------------------------------------------------------------------


def test_every_message_in_the_sources_has_a_translation() -> None:
    found = messages()
    assert len(found) > 50  # the scan itself works
    known = {skeleton(t.english) for t in CATALOG.templates}
    missing = [m for m in found if m.skeleton not in known]
    assert not missing, (
        f"{len(missing)} message(s) have no Chinese translation. Add a line to MESSAGES in {CATALOG_FILE} for each:\n"
        + "\n".join(f"  {m}\n{_as_template(m)}" for m in missing)
    )


def test_every_translation_is_still_used() -> None:
    written = python_literals() | sql_literals()
    unused = [english for english in MESSAGES if skeleton(english) not in written]
    assert not unused, f"catalog lines in {CATALOG_FILE} whose English text no source has any more: {unused}"


# A value of each placeholder kind, to make an instance of a template.
SAMPLES = {
    "": "x y",
    "field": "$.minutes",
    "value": "2026-11-01",
    "int": "7",
    "number": "7.5",
    "code": "minutes",
    "type": "int",
    "pattern": "'^x$'",
}


def _instance(template: Template) -> str:
    return "".join(
        literal + (SAMPLES[kind or ""] if name is not None else "")
        for literal, name, kind, _ in string.Formatter().parse(template.english)
    )


def test_every_message_of_the_sources_is_matched_by_its_own_line() -> None:
    """An instance of each source message finds the line written for it (no other line shadows it)."""
    lines = {skeleton(t.english): t for t in CATALOG.templates}
    for message in messages():
        template = lines[message.skeleton]
        found = CATALOG.match(_instance(template))
        assert found is not None, message
        assert found[0] is template, (message, found[0].english)
        assert reads_as_chinese(found[1]), (message, found[1])


def test_sections_do_not_overlap() -> None:
    sections = [set(MESSAGES), set(MSGSPEC_MESSAGES), set(LITESTAR_MESSAGES)]
    for i, first in enumerate(sections):
        for second in sections[i + 1 :]:
            assert not first & second


@pytest.mark.parametrize("english", [*MESSAGES, *MSGSPEC_MESSAGES, *LITESTAR_MESSAGES])
def test_each_translation_is_plain_chinese(english: str) -> None:
    translation = (MESSAGES | MSGSPEC_MESSAGES | LITESTAR_MESSAGES)[english]
    assert english.strip()
    assert translation.strip()
    assert has_no_chinese(english), english
    text = _placeholders_out(translation)
    assert has_chinese(text), translation
    assert not english_left(text), (english, translation, english_left(text))


def test_no_template_has_two_free_text_placeholders() -> None:
    """Two `.+?` in one pattern can take polynomial time on hostile text, and match what they should not."""
    for template in CATALOG.templates:
        free = [name for name, kind in template.placeholders if kind == ""]
        assert len(free) <= 1, f"{template.english!r}: give all but one of {free} a kind (field, value, int, ...)"


def test_every_title_is_chinese() -> None:
    for code, entry in CODES.items():
        assert has_no_chinese(entry.title), code
        assert reads_as_chinese(entry.title_zh), code


# --- the libraries' messages ----------------------------------------------------------------------


class Sample(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    count: int = 0
    maybe: int | None = None
    flag: bool = False
    items: list[int] = []
    mapping: dict[str, int] = {}
    id: uuid.UUID | None = None
    day: date | None = None
    moment: AwareDatetime | None = None
    name: Name = "x"
    slug: Slug = "ab"
    phone: Phone = "1"
    role: MemberRole = "volunteer"
    # msgspec states integer bounds as >= and <=; only floats give > and <.
    positive: Annotated[float, msgspec.Meta(gt=0)] = 1.0
    small: Annotated[float, msgspec.Meta(lt=10)] = 1.0
    at_least: Annotated[int, msgspec.Meta(ge=1)] = 1
    at_most: Annotated[int, msgspec.Meta(le=500)] = 1
    rate: Annotated[float, msgspec.Meta(ge=0.5)] = 1.0
    step: Annotated[int, msgspec.Meta(multiple_of=15)] = 15
    few: Annotated[list[int], msgspec.Meta(min_length=1, max_length=2)] = msgspec.field(default_factory=lambda: [1])


class Needs(msgspec.Struct):
    minutes: int


MSGSPEC_CASES: list[tuple[bytes, type[msgspec.Struct]]] = [
    (b'{"count": "60"}', Sample),
    (b'{"count": 1.5}', Sample),
    (b'{"count": null}', Sample),
    (b'{"count": 1e400}', Sample),
    (b'{"maybe": "x"}', Sample),
    (b'{"flag": 1}', Sample),
    (b'{"items": {}}', Sample),
    (b'{"mapping": []}', Sample),
    (b"[]", Sample),
    (b'{"positive": 0}', Sample),
    (b'{"small": 10}', Sample),
    (b'{"at_least": 0}', Sample),
    (b'{"at_most": 501}', Sample),
    (b'{"rate": 0.25}', Sample),
    (b'{"step": 20}', Sample),
    (b'{"name": ""}', Sample),
    (b'{"name": "' + b"x" * 101 + b'"}', Sample),
    (b'{"name": "a\\u0000"}', Sample),
    (b'{"slug": "A"}', Sample),
    (b'{"phone": "x"}', Sample),
    (b'{"few": []}', Sample),
    (b'{"few": [1, 2, 3]}', Sample),
    (b'{"role": "king"}', Sample),
    (b'{"id": "nope"}', Sample),
    (b'{"day": "2026-02-30"}', Sample),
    (b'{"moment": "yesterday"}', Sample),
    (b'{"moment": "2026-02-01T08:30:00"}', Sample),
    (b'{"unknown": 1}', Sample),
    (b"{}", Needs),
]


def _msgspec_message(body: bytes, model: type[msgspec.Struct]) -> str:
    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.json.decode(body, type=model, strict=True)
    # As the service reports it: the message without its " - at `$.x`" suffix.
    return field_errors(caught.value)[0]["message"]


def test_msgspec_messages_are_translated() -> None:
    hit: set[str] = set()
    for body, model in MSGSPEC_CASES:
        message = _msgspec_message(body, model)
        found = CATALOG.match(message)
        assert found is not None, f"msgspec says {message!r} ({body!r}): add it to MSGSPEC_MESSAGES in {CATALOG_FILE}"
        assert reads_as_chinese(found[1]), (message, found[1])
        hit.add(found[0].english)
    unused = set(MSGSPEC_MESSAGES) - hit
    assert not unused, (
        f"no msgspec message matches these catalog lines any more (or MSGSPEC_CASES lacks a case): {unused}"
    )


def test_msgspec_values_are_said_in_chinese() -> None:
    assert CATALOG.translate("Expected `int | null`, got `str`") == "类型不对：应为整数或空值 null，收到的是文字"
    assert CATALOG.translate("Expected `int` >= 1") == "应为不小于 1 的整数"
    assert CATALOG.translate("Expected `str` of length <= 100") == "内容太长：最多 100 个字"
    assert CATALOG.translate("Object missing required field `minutes`") == "缺少必填的字段 `minutes`"
    assert CATALOG.translate("Expected `str` matching regex '^[^\\\\x00]*$'") == "格式不对：不能包含空字符（NUL）"
    # An unknown type or pattern still reads, with the name as it is.
    assert CATALOG.translate("Expected `frozenset`, got `str`") == "类型不对：应为`frozenset`，收到的是文字"
    assert CATALOG.translate("Expected `str` matching regex '^[0-9]{7}$'") == "格式不对：应符合格式 '^[0-9]{7}$'"
    assert CATALOG.translate("Expected `str` matching regex '^[0-9]{6}$'") == "格式不对：应为 6 位数字"


def _litestar_details() -> list[str]:
    details = [to_domain_error(HTTPException(status_code=status)).detail for status in HTTP_STATUS_CODES]
    details += [to_domain_error(exc).detail for exc in (NotFoundException(), MethodNotAllowedException())]
    details.append(to_domain_error(RequestEntityTooLarge()).detail)
    return details


def test_litestar_messages_are_translated() -> None:
    hit: set[str] = set()
    for detail in _litestar_details():
        found = CATALOG.match(detail)
        assert found is not None, f"Litestar says {detail!r}: add it to LITESTAR_MESSAGES in {CATALOG_FILE}"
        assert reads_as_chinese(found[1])
        hit.add(found[0].english)
    assert set(LITESTAR_MESSAGES) == hit


def _request_models() -> set[type[Request]]:
    for module in pkgutil.walk_packages(timebank.__path__, "timebank."):
        importlib.import_module(module.name)
    found: set[type[Request]] = set()
    pending: list[type[Request]] = [Request]
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            if sub not in found:
                found.add(sub)
                pending.append(sub)
    return found


def _patterns(node: Any, seen: set[int]) -> set[str]:
    """Every string pattern in a msgspec.inspect type tree."""
    if id(node) in seen:
        return set()
    seen.add(id(node))
    found: set[str] = set()
    if isinstance(node, msgspec.inspect.StrType) and node.pattern is not None:
        found.add(node.pattern)
    if isinstance(node, msgspec.Struct):
        for name in node.__struct_fields__:
            found |= _patterns(getattr(node, name), seen)
    elif isinstance(node, list | tuple):
        for item in node:
            found |= _patterns(item, seen)
    return found


def test_every_pattern_of_the_request_models_is_said_in_words() -> None:
    models = _request_models()
    assert len(models) > 5
    seen: set[int] = set()
    patterns: set[str] = set()
    for info in msgspec.inspect.multi_type_info(sorted(models, key=lambda m: m.__qualname__)):
        patterns |= _patterns(info, seen)
    missing = patterns - set(PATTERNS)
    assert not missing, f"describe these request patterns in PATTERNS in {CATALOG_FILE}: {sorted(missing)}"
    assert not set(PATTERNS) - patterns, "PATTERNS describes patterns no request model has"


def test_every_rule_with_a_code_of_its_own_is_explained() -> None:
    for detail, _field, message in CONSTRAINT_DETAILS.values():
        for text in (detail, message):
            translated = CATALOG.translate(text)
            assert translated is not None, f"add {text!r} (db.CONSTRAINT_DETAILS) to MESSAGES in {CATALOG_FILE}"
            assert reads_as_chinese(translated)
    assert set(CONSTRAINTS) == set(CONSTRAINT_CODES) - set(CONSTRAINT_DETAILS), (
        f"explain each of db.CONSTRAINT_CODES without CONSTRAINT_DETAILS in CONSTRAINTS in {CATALOG_FILE}"
    )
    assert CATALOG.translate("rejected by rule transactions_hold_id_key") == (
        "这笔冻结已经扣除过了（数据库规则 transactions_hold_id_key）。"
    )
    assert CATALOG.translate("rejected by rule members_grid_check") == (
        "请求与数据库的规则不符，没有保存（数据库规则 members_grid_check）。"
    )


# --- the catalog engine ---------------------------------------------------------------------------


def test_the_most_specific_template_wins() -> None:
    catalog = Catalog(
        {
            "{name} must be between {first} and {last}": "{name} 在 {first} 与 {last} 之间",
            "limit must be between 1 and {n:int}": "每页 1 到 {n}",
        },
        KINDS,
    )
    assert catalog.translate("limit must be between 1 and 500") == "每页 1 到 500"
    assert catalog.translate("day must be between 1900-01-01 and 2999-12-31") == "day 在 1900-01-01 与 2999-12-31 之间"
    assert catalog.translate("limit must be between 1 and many") == "limit 在 1 与 many 之间"
    assert catalog.translate("nothing like it") is None


def test_a_hostile_text_is_not_taken_for_another_message() -> None:
    assert CATALOG.translate("no community 'a must be between b and c'") == "找不到社区 'a must be between b and c'。"
    assert CATALOG.translate("no community '" + "x" * 3000 + "'") is None


def test_kinds_and_derived_values() -> None:
    catalog = Catalog(
        {"{a:int} and {b:int}": "{a} 加 {b} 得 {total}", "{{literal}} braces": "花括号 {{原样}}"},
        KINDS,
        {"total": Derived(("a", "b"), lambda a, b: str(int(a) + int(b)))},
    )
    assert catalog.translate("2 and 3") == "2 加 3 得 5"
    assert catalog.translate("2 and three") is None
    assert catalog.translate("{literal} braces") == "花括号 {原样}"


def test_the_spendable_minutes_are_worked_out() -> None:
    text = "account 5f0e cannot give 60 minutes: balance 45, held 15, lowest allowed -60"
    assert CATALOG.translate(text) == (
        "可用余额不足：账户 5f0e 可用 90 分钟，本次需要 60 分钟（余额 45 分钟，已冻结 15 分钟，最低可到 -60 分钟）。"
    )


@pytest.mark.parametrize(
    "entries",
    [
        pytest.param({"": "空"}, id="empty-english"),
        pytest.param({"text": " "}, id="empty-translation"),
        pytest.param({"no {thing}": "没有"}, id="placeholder-dropped"),
        pytest.param({"no thing": "没有 {thing}"}, id="placeholder-invented"),
        pytest.param({"{a} and {a}": "{a}"}, id="placeholder-repeated"),
        pytest.param({"no {thing:colour}": "没有 {thing}"}, id="unknown-kind"),
        pytest.param({"no {thing": "没有"}, id="unbalanced-brace"),
        pytest.param({"no {thing}": "没有 {thing:int}"}, id="kind-in-translation"),
        pytest.param({"no {thing}": "没有 {thing!r}"}, id="conversion-in-translation"),
        pytest.param({"no {thing}": "没有 {}"}, id="positional-in-translation"),
    ],
)
def test_bad_entries_are_refused_when_the_catalog_is_built(entries: dict[str, str]) -> None:
    with pytest.raises(CatalogError):
        Catalog(entries, {"": Kind(r".+?")})


# --- problems -------------------------------------------------------------------------------------


def _problem(detail: str, code: str = "invalid_request", **extra: Any) -> Problem:
    return DomainError(detail, code=code, **extra).to_problem("rid")


def test_english_is_the_problem_as_it_is() -> None:
    problem = _problem("no such member", "not_found")
    assert localize_problem(problem, "en") is problem


def test_chinese_changes_title_detail_and_messages_only() -> None:
    english = _problem(
        "$.minutes: Expected `int`, got `str`; $.x: Object contains unknown field `x`",
        errors=[
            FieldError("$.minutes", "Expected `int`, got `str`"),
            FieldError("$.x", "Object contains unknown field `x`"),
        ],
    )
    chinese = localize_problem(english, "zh")
    assert chinese.title == "请求无效"
    assert chinese.detail == "字段 $.minutes：类型不对：应为整数，收到的是文字；字段 $.x：不认识的字段 `x`，请去掉。"
    assert chinese.errors == [
        FieldError("$.minutes", "类型不对：应为整数，收到的是文字"),
        FieldError("$.x", "不认识的字段 `x`，请去掉"),
    ]
    assert (
        msgspec.structs.replace(chinese, title=english.title, detail=english.detail, errors=english.errors) == english
    )


def test_a_message_without_translation_still_reads_chinese_and_is_logged() -> None:
    problem = _problem("the moon is in the wrong phase", "conflict")
    with structlog.testing.capture_logs() as logs:
        chinese = localize_problem(problem, "zh")
    assert chinese.title == "与现有数据冲突"
    assert chinese.detail == "请求未能完成（原文：the moon is in the wrong phase）。"
    assert [e["event"] for e in logs] == ["problem_text_untranslated"]
