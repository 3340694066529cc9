"""The English problem messages written in the sources, found by reading them (not by running them).

Python (timebank/**/*.py): the first argument of every DomainError (or subclass) constructed, the
detail of `problem_from_code`, and the `message` of every `errors=[{"field": ..., "message": ...}]`
and `FieldError(message=...)`. SQL (sql/functions, sql/migrations): the message of every `_fail(...)`,
the not-found message passed to `_authorize(...)`, `'message', '...'` pairs of `errors` members,
and `raise exception using errcode = 'TB000'/'TB901', message = ...`.

Each message is reduced to its skeleton: literal text with every value (`{...}` in an f-string,
`%s` in SQL `format`) as `{}`. A message built only from other messages (`f"{field}: {message}"`)
has no words of its own and is left out.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON_ROOT = ROOT / "timebank"
CATALOG_ROOT = PYTHON_ROOT / "i18n"
SQL_DIRS = (ROOT / "sql" / "functions", ROOT / "sql" / "migrations")

# SQLSTATEs that db.translate() turns into problems with the message as their detail.
PROBLEM_SQLSTATES = frozenset({"TB000", "TB901"})


@dataclass(frozen=True)
class Message:
    skeleton: str
    where: str  # path:line, and what the message is

    def __str__(self) -> str:
        return f"{self.where}: {self.skeleton!r}"


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def python_skeleton(node: ast.expr) -> str | None:
    """The skeleton of a string literal or f-string; None for anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return _escape(node.value)
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                parts.append(_escape(value.value))
            else:
                parts.append("{}")
        return "".join(parts)
    return None


def _python_files() -> list[Path]:
    return sorted(p for p in PYTHON_ROOT.rglob("*.py") if ".venv" not in p.parts)


def _trees() -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text(encoding="utf-8"), str(path))) for path in _python_files()]


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def domain_error_names(trees: list[tuple[Path, ast.Module]]) -> set[str]:
    """DomainError and every class deriving from it, anywhere in timebank/."""
    names = {"DomainError"}
    classes = [node for _, tree in trees for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    grown = True
    while grown:
        grown = False
        for cls in classes:
            if cls.name not in names and any(_name(base) in names for base in cls.bases):
                names.add(cls.name)
                grown = True
    return names


def _has_words(skeleton: str) -> bool:
    return bool(re.search(r"[A-Za-z]{2,}", skeleton.replace("{}", "")))


def _alternatives(expr: ast.expr, what: str) -> Iterator[tuple[ast.expr, str]]:
    """Each message an expression may be: both sides of `a if c else b`, each operand of `a or b`."""
    if isinstance(expr, ast.IfExp):
        yield from _alternatives(expr.body, what)
        yield from _alternatives(expr.orelse, what)
    elif isinstance(expr, ast.BoolOp):
        for value in expr.values:
            yield from _alternatives(value, what)
    else:
        yield expr, what


def _call_candidates(node: ast.Call, errors: set[str]) -> Iterator[tuple[ast.expr, str]]:
    callee = _name(node.func)
    keywords = {k.arg: k.value for k in node.keywords if k.arg}
    if callee in errors:
        detail = node.args[0] if node.args else keywords.get("detail")
        if detail is not None:
            yield detail, f"{callee}(...)"
    elif callee == "problem_from_code" and len(node.args) > 1:
        yield node.args[1], "problem_from_code(...)"
    elif callee == "FieldError" and "message" in keywords:
        yield keywords["message"], "FieldError(message=...)"
    # errors=[{"field": ..., "message": ...}] of a raise.
    for item in ast.walk(keywords["errors"]) if "errors" in keywords else ():
        if isinstance(item, ast.Dict):
            for key, value in zip(item.keys, item.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "message":
                    yield value, 'errors=[{"message": ...}]'


def python_messages() -> list[Message]:
    trees = _trees()
    errors = domain_error_names(trees)
    found: list[Message] = []
    for path, tree in trees:
        rel = path.relative_to(ROOT)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            for expr, what in (c for candidate in _call_candidates(node, errors) for c in _alternatives(*candidate)):
                skeleton = python_skeleton(expr)
                if skeleton is not None and _has_words(skeleton):
                    found.append(Message(skeleton, f"{rel}:{expr.lineno} {what}"))
    return found


def python_literals() -> set[str]:
    """The skeleton of every string literal and f-string in timebank/, the catalogs in timebank/i18n/ aside."""
    found: set[str] = set()
    for path, tree in _trees():
        if path.is_relative_to(CATALOG_ROOT):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.expr):
                skeleton = python_skeleton(node)
                if skeleton is not None:
                    found.add(skeleton)
    return found


# --- SQL ------------------------------------------------------------------------------------------


def _blank_comments(sql: str) -> str:
    """The SQL with comments replaced by spaces (so offsets and line numbers stay), strings kept."""
    out = list(sql)
    i = 0
    while i < len(sql):
        if sql[i] == "'":
            end = i + 1
            while end < len(sql):
                if sql[end] == "'" and sql[end + 1 : end + 2] == "'":
                    end += 2
                elif sql[end] == "'":
                    break
                else:
                    end += 1
            i = end + 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = len(sql) if end < 0 else end
            out[i:end] = " " * (end - i)
            i = end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i) + 2
            out[i:end] = [c if c == "\n" else " " for c in sql[i:end]]
            i = end
        else:
            i += 1
    return "".join(out)


def _arguments(sql: str, open_paren: int) -> tuple[list[str], int]:
    """The top-level arguments of the call whose `(` is at `open_paren`, and the offset after `)`."""
    args: list[str] = []
    depth = 0
    start = open_paren + 1
    i = open_paren
    while i < len(sql):
        char = sql[i]
        if char == "'":
            i += 1
            while i < len(sql) and not (sql[i] == "'" and sql[i + 1 : i + 2] != "'"):
                i += 2 if sql[i] == "'" else 1
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                args.append(sql[start:i].strip())
                return args, i + 1
        elif char == "," and depth == 1:
            args.append(sql[start:i].strip())
            start = i + 1
        i += 1
    raise ValueError(f"unbalanced parentheses after offset {open_paren}")


_LITERAL = re.compile(r"'((?:[^']|'')*)'", re.DOTALL)


def _sql_literal(text: str) -> str | None:
    found = _LITERAL.fullmatch(text.strip())
    return found.group(1).replace("''", "'") if found else None


def sql_skeleton(expr: str) -> str | None:
    """The skeleton of a SQL message: a '...' literal or format('...', ...); None for anything else."""
    literal = _sql_literal(expr)
    if literal is not None:
        return _escape(literal)
    call = re.match(r"format\s*\(", expr.strip())
    if call:
        args, _ = _arguments(expr.strip(), call.end() - 1)
        template = _sql_literal(args[0])
        if template is not None:
            return _escape(template).replace("%s", "{}").replace("%%", "%")
    return None


def _sql_files() -> list[Path]:
    return sorted(p for folder in SQL_DIRS for p in folder.glob("*.sql"))


def _calls(sql: str, function: str) -> Iterator[tuple[int, list[str]]]:
    for found in re.finditer(rf"(?<![\w.]){function}\s*\(", sql):
        args, _ = _arguments(sql, found.end() - 1)
        yield found.start(), args


def sql_messages() -> list[Message]:
    found: list[Message] = []
    for path in _sql_files():
        sql = _blank_comments(path.read_text(encoding="utf-8"))
        rel = path.relative_to(ROOT)

        def add(offset: int, expr: str, what: str, rel: Path = rel, sql: str = sql) -> None:
            skeleton = sql_skeleton(expr)
            if skeleton is not None and _has_words(skeleton):
                found.append(Message(skeleton, f"{rel}:{sql.count(chr(10), 0, offset) + 1} {what}"))

        for offset, args in _calls(sql, "_fail"):
            if len(args) >= 2:
                add(offset, args[1], f"_fail({args[0]}, ...)")
        for offset, args in _calls(sql, "_authorize"):
            if len(args) >= 6:
                add(offset, args[-1], "_authorize(..., not-found message)")
        for pair in re.finditer(r"'message'\s*,\s*('(?:[^']|'')*')", sql):
            add(pair.start(), pair.group(1), "'message', ...")
        for statement in re.finditer(r"raise\s+exception\s+using\b(.*?);", sql, re.DOTALL | re.IGNORECASE):
            options = statement.group(1)
            errcode = re.search(r"errcode\s*=\s*'(\w+)'", options)
            message = re.search(r"message\s*=\s*", options)
            if errcode and message and errcode.group(1) in PROBLEM_SQLSTATES:
                rest = options[message.end() :]
                literal = _LITERAL.match(rest)
                if literal:
                    expr = literal.group(0)
                elif re.match(r"format\s*\(", rest):
                    expr = rest[: _arguments(rest, rest.index("("))[1]]
                else:
                    expr = rest.split(",", 1)[0]  # a variable: no text of its own
                add(statement.start(), expr, f"raise {errcode.group(1)}")
    return found


def sql_literals() -> set[str]:
    """The skeleton of every string literal in the SQL files (`%s` as a value)."""
    found: set[str] = set()
    for path in _sql_files():
        sql = _blank_comments(path.read_text(encoding="utf-8"))
        for literal in _LITERAL.finditer(sql):
            found.add(_escape(literal.group(1).replace("''", "'")).replace("%s", "{}").replace("%%", "%"))
    return found


def messages() -> list[Message]:
    """Every English problem message written in the sources."""
    return python_messages() + sql_messages()


def _assigned(node: ast.AST) -> tuple[list[str], ast.expr | None]:
    """The names an assignment binds, and the value it binds them to."""
    if isinstance(node, ast.Assign):
        return [_name(t) or "" for t in node.targets], node.value
    if isinstance(node, ast.AnnAssign):
        return [_name(node.target) or ""], node.value
    return [], None


def _python_codes(tree: ast.Module) -> Iterator[ast.expr]:
    """Where Python code raises a code: `code="..."`, problem_from_code's first argument, a `code = "..."`
    class attribute, the values of a `..._CODES` mapping."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield from (k.value for k in node.keywords if k.arg == "code")
            if _name(node.func) == "problem_from_code" and node.args:
                yield node.args[0]
        elif isinstance(node, ast.ClassDef):
            for statement in node.body:
                names, value = _assigned(statement)
                if "code" in names and value is not None:
                    yield value
        else:
            names, value = _assigned(node)
            if isinstance(value, ast.Dict) and any(n.endswith("_CODES") for n in names):
                yield from (v for v in value.values if v is not None)


def used_codes() -> dict[str, str]:
    """Each error code the sources raise, with one place that raises it.

    Python: see _python_codes. SQL: the first argument of `_fail`, and `detail = '...'` of a raise.
    Codes merely named (in the registry, in the OpenAPI document's examples) do not count.
    """
    used: dict[str, str] = {}
    for path, tree in _trees():
        for code in _python_codes(tree):
            if isinstance(code, ast.Constant) and isinstance(code.value, str):
                used.setdefault(code.value, f"{path.relative_to(ROOT)}:{code.lineno}")
    for path in _sql_files():
        sql = _blank_comments(path.read_text(encoding="utf-8"))
        for offset, args in _calls(sql, "_fail"):
            literal = _sql_literal(args[0]) if args else None
            if literal is not None:
                used.setdefault(literal, f"{path.relative_to(ROOT)}:{sql.count(chr(10), 0, offset) + 1}")
        for found in re.finditer(r"detail\s*=\s*'(\w+)'", sql):
            used.setdefault(found.group(1), f"{path.relative_to(ROOT)}:{sql.count(chr(10), 0, found.start()) + 1}")
    return used
