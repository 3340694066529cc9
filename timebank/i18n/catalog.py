"""A catalog of message templates: English text in, translated text out.

Messages are written in English where they are raised (SQL `_fail`, Python raises, msgspec,
Litestar), often with values in them. The catalog maps each English template to its translation:

    "minutes must be a multiple of {unit:int}": "时长必须是 {unit} 分钟的整数倍。",

`{name}` matches any text and `{name:kind}` the values of one kind (see `Catalog.kinds`); the
translation names the same placeholders, which are filled with the values found (ids, numbers and
paths stay as they were; some kinds are translated too). Literal braces are doubled, as in
str.format. Templates are compiled once into anchored regular expressions; a template without
placeholders is a dictionary lookup. When several templates match, the one with the most literal
text wins, so a specific message is never taken for a general one.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass

_FORMATTER = string.Formatter()

# Problem texts are sentences; a longer text (a hostile field name, say) is not worth matching.
MAX_TEXT_CHARS = 2000


@dataclass(frozen=True)
class Kind:
    """What a placeholder matches, and how its value is written in the translation."""

    pattern: str
    render: Callable[[str], str] = str


@dataclass(frozen=True)
class Derived:
    """A value a translation may name that the English text lacks, computed from the English values.

    `compute` raises ValueError when the values do not allow it; the template then does not match.
    """

    inputs: tuple[str, ...]
    compute: Callable[..., str]


@dataclass(frozen=True)
class Template:
    """One compiled catalog entry."""

    english: str
    translation: str
    # (name, kind) of each placeholder, in order.
    placeholders: tuple[tuple[str, str], ...]
    derived: tuple[str, ...]
    literal_chars: int
    regex: re.Pattern[str]


class CatalogError(ValueError):
    """A catalog entry that cannot work: no text, an unknown kind, placeholders that do not correspond."""


def _parse(template: str) -> list[tuple[str, str | None, str]]:
    return [(literal, name, spec or "") for literal, name, spec, _ in _FORMATTER.parse(template)]


def skeleton(template: str) -> str:
    """The template with each placeholder reduced to `{}`: the form in which sources and catalog are compared."""
    return "".join(
        literal.replace("{", "{{").replace("}", "}}") + ("{}" if name is not None else "")
        for literal, name, _ in _parse(template)
    )


def _unescape(text: str) -> str:
    return text.replace("{{", "{").replace("}}", "}")


class Catalog:
    """English templates compiled once; `translate` finds the one a text matches and renders it."""

    def __init__(
        self, entries: Mapping[str, str], kinds: Mapping[str, Kind], derived: Mapping[str, Derived] | None = None
    ) -> None:
        self.kinds = dict(kinds)
        self.derived = dict(derived or {})
        self.templates = [self._compile(english, translation) for english, translation in entries.items()]
        self._exact = {_unescape(t.english): t for t in self.templates if not t.placeholders}
        self._patterns = sorted((t for t in self.templates if t.placeholders), key=lambda t: -t.literal_chars)

    def _compile(self, english: str, translation: str) -> Template:
        if not english.strip() or not translation.strip():
            raise CatalogError(f"empty catalog entry: {english!r}: {translation!r}")
        try:
            parsed = _parse(english)
            fields = [
                (name, spec, conversion)
                for _, name, spec, conversion in _FORMATTER.parse(translation)
                if name is not None
            ]
        except ValueError as exc:
            raise CatalogError(f"{english!r}: {exc}") from None
        if any(spec or conversion for _, spec, conversion in fields):
            raise CatalogError(
                f"{english!r}: a translation names its placeholders plainly, without :kind or !conversion"
            )
        wanted = {name for name, _, _ in fields}
        regex: list[str] = []
        placeholders: list[tuple[str, str]] = []
        for literal, name, kind in parsed:
            regex.append(re.escape(literal))
            if name is None:
                continue
            if not name.isidentifier() or name in dict(placeholders) or kind not in self.kinds:
                raise CatalogError(f"{english!r}: placeholder {{{name}:{kind}}} is misnamed, repeated or of no kind")
            placeholders.append((name, kind))
            regex.append(f"(?P<{name}>{self.kinds[kind].pattern})")
        names = {name for name, _ in placeholders}
        derived = tuple(sorted(wanted - names))
        missing = names - wanted
        unknown = [d for d in derived if d not in self.derived or not set(self.derived[d].inputs) <= names]
        if missing or unknown:
            raise CatalogError(
                f"{english!r}: the translation must name every placeholder of the English text"
                f" (missing: {sorted(missing)}) and no other (unknown: {unknown})"
            )
        literal_chars = sum(len(literal) for literal, _, _ in parsed)
        return Template(
            english, translation, tuple(placeholders), derived, literal_chars, re.compile("".join(regex), re.DOTALL)
        )

    def match(self, text: str) -> tuple[Template, str] | None:
        """The entry `text` is an instance of, and the translation; None when no entry matches."""
        exact = self._exact.get(text)
        if exact is not None:
            return exact, _unescape(exact.translation)
        if len(text) > MAX_TEXT_CHARS:
            return None
        for template in self._patterns:
            found = template.regex.fullmatch(text)
            if found is None:
                continue
            values = {name: self.kinds[kind].render(found[name]) for name, kind in template.placeholders}
            try:
                for name in template.derived:
                    rule = self.derived[name]
                    values[name] = rule.compute(*(found[i] for i in rule.inputs))
            except ValueError:
                continue
            return template, template.translation.format_map(values)
        return None

    def translate(self, text: str) -> str | None:
        """The translation of `text`, or None when no entry matches."""
        found = self.match(text)
        return found[1] if found else None
