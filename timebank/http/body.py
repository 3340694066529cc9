"""Strict request bodies.

Litestar converts bodies leniently ("60" becomes 60) and reports faults without their JSON path, so
every route with a body is checked here first, by a guard, exactly: JSON media type, valid UTF-8,
no duplicated keys, exact types, no unknown fields. Only a body that passes reaches the handler.
"""

from __future__ import annotations

import decimal
import json
import re
import types
import typing
from typing import Any

import msgspec
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from timebank.errors import DomainError, InvalidRequestError

_PATH = re.compile(r" - at `(\$[^`]*)`$")
_FIELD = re.compile(r"(?:missing required field|unknown field) `([^`]+)`")


def _body_model(handler: BaseRouteHandler) -> tuple[type[msgspec.Struct] | None, bool]:
    """The Struct a handler's `data` parameter expects, and whether the body may be absent."""
    cached = handler.opt.get("_timebank_body_model")
    if cached is None:
        model: type[msgspec.Struct] | None = None
        optional = False
        field = handler.parsed_fn_signature.parameters.get("data")
        if field is not None:
            annotation = field.annotation
            for candidate in typing.get_args(annotation) or (annotation,):
                if candidate is type(None):
                    optional = True
                elif isinstance(candidate, type) and issubclass(candidate, msgspec.Struct):
                    model = candidate
            if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
                optional = optional or type(None) in typing.get_args(annotation)
        cached = handler.opt["_timebank_body_model"] = (model, optional)
    result: tuple[type[msgspec.Struct] | None, bool] = cached
    return result


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise InvalidRequestError(
                f"the field {key!r} appears more than once",
                errors=[{"field": f"$.{key}", "message": "duplicated field"}],
            )
        seen[key] = value
    return seen


def field_errors(error: msgspec.ValidationError) -> list[dict[str, str]]:
    """The msgspec fault as [{field: JSON path, message}], naming the field even when msgspec names its object."""
    message = str(error)
    match = _PATH.search(message)
    path = match.group(1) if match else "$"
    text = _PATH.sub("", message)
    named = _FIELD.search(text)
    if named:
        path = f"{path}.{named.group(1)}"
    return [{"field": path, "message": text}]


def _integral_number(text: str) -> int | float:
    """A JSON number with a fraction or exponent: the integer it equals, when it is one."""
    try:
        number = decimal.Decimal(text)
    except decimal.InvalidOperation:
        return float(text)
    # Bounded so that `1e999999` cannot make a huge integer; such amounts are refused anyway.
    if number.is_finite() and number == number.to_integral_value() and abs(number.adjusted()) < 40:
        return int(number)
    return float(text)


def _decode_integral_numbers(body: bytes, model: type[msgspec.Struct]) -> msgspec.Struct:
    """JSON Schema counts 60.0 and 6e1 as the integer 60, so the documented `integer` fields take
    them as 60 (and 1.5 stays a float, which they refuse)."""
    return msgspec.convert(json.loads(body, parse_float=_integral_number), model, strict=True)


def missing_fields(body: bytes, model: type[msgspec.Struct]) -> list[dict[str, str]]:
    """Every required field of `model` that the body's top-level object lacks, as field errors."""
    try:
        given = json.loads(body)
    except (ValueError, RecursionError):
        return []
    if not isinstance(given, dict):
        return []
    return [
        {"field": f"$.{field.encode_name}", "message": f"Object missing required field `{field.encode_name}`"}
        for field in msgspec.structs.fields(model)
        if field.required and field.encode_name not in given
    ]


def decode_strict(body: bytes, model: type[msgspec.Struct]) -> msgspec.Struct:
    """Decode a JSON body into `model` exactly, or raise 400 invalid_request naming the field.

    msgspec stops at the first fault; when that is a missing field of the body's own object, every
    missing field is named (a PUT of a whole policy says all it lacks at once).
    """
    try:
        try:
            value = msgspec.json.decode(body, type=model, strict=True)
        except msgspec.ValidationError:
            # The rare body with a number like 60.0 takes the slower path; a fault stays a fault.
            value = _decode_integral_numbers(body, model)
        # Exact types passed; now refuse duplicated keys, which parsers resolve differently.
        json.loads(body, object_pairs_hook=_no_duplicate_keys)
    except msgspec.ValidationError as exc:
        errors = field_errors(exc)
        if "missing required field" in errors[0]["message"] and errors[0]["field"].count(".") == 1:
            errors = missing_fields(body, model) or errors
        detail = "; ".join(f"{error['field']}: {error['message']}" for error in errors)
        raise InvalidRequestError(detail, errors=errors) from None
    except (msgspec.DecodeError, UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidRequestError(
            "the body is not valid JSON (UTF-8, one value, no duplicated keys, nesting within limits)",
            errors=[{"field": "$", "message": "not valid JSON"}],
        ) from None
    return value


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


async def validate_body(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Guard: check the body against the handler's model before Litestar parses it."""
    model, optional = _body_model(handler)
    if model is None:
        return
    body: bytes = await connection.body()  # type: ignore[attr-defined]
    if not body.strip() or (optional and body.strip() == b"null"):
        if optional:
            return
        raise InvalidRequestError("this request needs a JSON body", errors=[{"field": "$", "message": "required"}])
    if not _is_json(connection.headers.get("content-type", "")):
        raise DomainError("send the body as application/json", code="unsupported_media_type")
    decode_strict(body, model)
