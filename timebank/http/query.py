"""Strict query strings: what the framework would quietly bend is refused, as the schema says.

Litestar takes the first of a repeated parameter and reads the word `null` as "not given". The
OpenAPI document declares each query parameter once, with its type: a repeated one, or `null` for
one that is not free text, does not satisfy it, so it is refused (400 invalid_request) rather than
read as something the caller did not write.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.routes import HTTPRoute

from timebank.errors import InvalidRequestError

_RULES = "_timebank_query_rules"


def _is_free_text(annotation: Any) -> bool:
    arms = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) else ()
    inner = [arm for arm in arms if arm is not type(None)] or [annotation]
    while typing.get_origin(inner[0]) is typing.Annotated:
        inner = [typing.get_args(inner[0])[0]]
    return len(inner) == 1 and inner[0] is str


def index_query_parameters(app: Litestar) -> None:
    """Note, on each handler, its query parameters (by the name callers write) and which are free text."""
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler, kwargs_model in route.route_handler_map.values():
            signature = handler.parsed_fn_signature.parameters
            handler.opt[_RULES] = {
                parameter.field_alias: _is_free_text(signature[parameter.field_name].annotation)
                if parameter.field_name in signature
                else True
                for parameter in kwargs_model.expected_query_params
                if not parameter.is_sequence
            }


def validate_query(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Guard: each declared parameter at most once, and `null` only where any text is allowed."""
    rules: dict[str, bool] = handler.opt.get(_RULES, {})
    if not rules:
        return
    query = connection.query_params
    for name, free_text in rules.items():
        values = query.getall(name, [])
        if len(values) > 1:
            raise InvalidRequestError(
                f"give the query parameter {name} once", errors=[{"field": name, "message": "given more than once"}]
            )
        if values and values[0] == "null" and not free_text:
            raise InvalidRequestError(
                f"{name} cannot be null: leave it out instead", errors=[{"field": name, "message": "not a value"}]
            )
