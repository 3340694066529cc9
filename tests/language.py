"""Checks on the language of a text, shared by the catalog and API tests."""

from __future__ import annotations

import re

_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_CHINESE_PUNCTUATION = re.compile(r"[\u3000-\u303f\uff00-\uffef]")
# What may stay as it is inside a Chinese sentence: `code spans`, 'quoted' and "quoted" values,
# placeholders, and tokens that are names rather than words (paths, ids, headers, media types,
# numbers, dates: anything with a digit, `_`, `-`, `/`, `.`, `$`, `:`, `=`).
_KEPT = re.compile(r"`[^`]*`|'[^']*'|\"[^\"]*\"|\{[^{}]*\}|\S*[0-9_\-/.$:=\\]\S*")
_ENGLISH_RUN = re.compile(r"[A-Za-z]+(?:[ ,;]+[A-Za-z]+){2,}")


def has_chinese(text: str) -> bool:
    return bool(_HAN.search(text))


def has_no_chinese(text: str) -> bool:
    return not _HAN.search(text) and not _CHINESE_PUNCTUATION.search(text)


def english_left(text: str) -> list[str]:
    """Runs of three or more English words outside code spans, quoted values, ids and paths."""
    return _ENGLISH_RUN.findall(_KEPT.sub(" ", text))


def reads_as_chinese(text: str) -> bool:
    """Chinese, with no untranslated English sentence in it."""
    return has_chinese(text) and not english_left(text)
