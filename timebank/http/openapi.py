"""The OpenAPI document, finished so that it tells the whole truth.

Litestar generates the document from the routes and models. What it cannot say is added here,
once, from the same sources the server obeys:
- request bodies are closed (`additionalProperties: false`), as the strict body guard refuses
  unknown fields;
- every enum is one reusable schema, named in NAMED_ENUMS;
- each problem response's `code` is an enum of exactly the codes its examples show (see
  timebank.http.responses.problems), drawn from the one registry of codes;
- `Idempotency-Key` is required with its real length and pattern where a route requires it, and the
  headers the server sends are declared (`Location`, `Idempotent-Replayed`, `Retry-After`,
  `X-Request-ID`);
- links chain the operations whose answers feed each other;
- public operations say `security: []`.
A route handler documents itself with `opt={"public": True}` (no token) and with `operation_id`
taken from its function name, which is short and stable.
"""

from __future__ import annotations

import copy
import html
from collections.abc import Iterator
from typing import Any, get_args

import msgspec
from litestar import Litestar, Request
from litestar.enums import OpenAPIMediaType
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.openapi.spec import OpenAPI

from timebank.communities.models import GiftScope
from timebank.errors import CODES, PROBLEM_MEDIA_TYPE
from timebank.holds.models import HoldStatus
from timebank.http.idempotency import MAX_KEY_CHARS
from timebank.http.types import MemberRole, PrincipalRole
from timebank.http.types import Request as RequestBody
from timebank.ledger.models import AccountKind, TransactionKind
from timebank.members.models import Relation
from timebank.reports import csv as report_csv
from timebank.services.models import Funding, ServiceRequestStatus

# Every enum of the document, by the name generated clients give its class.
NAMED_ENUMS: dict[str, tuple[str, ...]] = {
    "MemberRole": get_args(MemberRole),
    "PrincipalRole": get_args(PrincipalRole),
    "TransactionKind": get_args(TransactionKind),
    "AccountKind": get_args(AccountKind),
    "HoldStatus": get_args(HoldStatus),
    "ServiceRequestStatus": get_args(ServiceRequestStatus),
    "Funding": get_args(Funding),
    # people (policy additions, relatives)
    "GiftScope": get_args(GiftScope),
    "Relation": get_args(Relation),
}

IDEMPOTENCY_KEY_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_KEY_CHARS,
    "pattern": "^[\\x20-\\x7e]+$",
    "description": "1–200 printable ASCII characters, unique per intended write, scoped to the caller",
}

HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {
        "description": "The request's id (the caller's own X-Request-ID when valid); the audit trail and logs carry it",
        "required": True,
        "schema": {"type": "string", "minLength": 1, "maxLength": 200},
    },
    "Location": {
        "description": "Where the created resource can be read",
        "required": True,
        "schema": {"type": "string", "format": "uri-reference"},
    },
    "Idempotent-Replayed": {
        "description": "`true` when this is the remembered answer to an earlier request with the same key;"
        " absent on a fresh answer",
        "required": False,
        "schema": {"type": "string", "const": "true"},
    },
    "Retry-After": {
        "description": "Seconds to wait before retrying",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
}

# Operations whose answer feeds another: operationId -> {link name: (target operationId, parameters,
# request body fields)}. Values are OpenAPI runtime expressions into the source's response.
Link = tuple[str, dict[str, str], dict[str, str]]
_TRANSACTION_LINKS: dict[str, Link] = {
    "GetTransaction": ("get_transaction", {"transaction_id": "$response.body#/id"}, {}),
    "ReverseTransaction": ("reverse_transaction", {"transaction_id": "$response.body#/id"}, {}),
    "GetTransactionProof": ("get_transaction_proof", {"transaction_id": "$response.body#/id"}, {}),
}
# Service requests: each answer leads to the request and its next steps.
_SERVICE_REQUEST_STEPS = ("assign", "check_in", "report", "confirm", "dispute", "cancel")
_SERVICE_REQUEST_LINKS: dict[str, Link] = {
    "GetServiceRequest": ("get_service_request", {"request_id": "$response.body#/id"}, {}),
    **{
        "".join(word.title() for word in step.split("_")): (
            f"{step}_service_request",
            {"request_id": "$response.body#/id"},
            {},
        )
        for step in _SERVICE_REQUEST_STEPS
    },
}
LINKS: dict[str, dict[str, Link]] = {
    "create_community": {
        "GetCommunity": ("get_community", {"slug": "$response.body#/slug"}, {}),
        "CreateMember": ("create_member", {"slug": "$response.body#/slug"}, {}),
        "ListMembers": ("list_members", {"slug": "$response.body#/slug"}, {}),
        "ListTransactions": ("list_transactions", {"slug": "$response.body#/slug"}, {}),
        "GetIssuanceAccount": ("get_account", {"account_id": "$response.body#/accounts/issuance"}, {}),
        "GetPoolAccount": ("get_account", {"account_id": "$response.body#/accounts/pool"}, {}),
    },
    "create_member": {
        "GetMember": ("get_member", {"member_id": "$response.body#/id"}, {}),
        "IssueToken": ("issue_token", {"member_id": "$response.body#/id"}, {}),
        "GetAccount": ("get_account", {"account_id": "$response.body#/account_id"}, {}),
        "ListEntries": ("list_entries", {"account_id": "$response.body#/account_id"}, {}),
        "Credit": ("post_credit", {}, {"member_id": "$response.body#/id"}),
        "Redeem": ("post_redemption", {}, {"member_id": "$response.body#/id"}),
        "Give": ("post_transfer", {}, {"from_member_id": "$response.body#/id"}),
        "Grant": ("post_pool_grant", {}, {"member_id": "$response.body#/id"}),
        "Hold": ("place_hold", {}, {"member_id": "$response.body#/id"}),
    },
    "issue_token": {"GetMember": ("get_member", {"member_id": "$response.body#/member_id"}, {})},
    **dict.fromkeys(
        ("post_credit", "post_redemption", "post_transfer", "post_pool_grant", "capture_hold"), _TRANSACTION_LINKS
    ),
    "reverse_transaction": {"GetTransaction": _TRANSACTION_LINKS["GetTransaction"]},
    "place_hold": {
        "GetHold": ("get_hold", {"hold_id": "$response.body#/id"}, {}),
        "CaptureHold": ("capture_hold", {"hold_id": "$response.body#/id"}, {}),
        "ReleaseHold": ("release_hold", {"hold_id": "$response.body#/id"}, {}),
        "GetAccount": ("get_account", {"account_id": "$response.body#/account_id"}, {}),
    },
    "get_member": {"GetAccount": ("get_account", {"account_id": "$response.body#/account_id"}, {})},
    # people
    "change_member": {"GetMember": ("get_member", {"member_id": "$response.body#/id"}, {})},
    "add_relative": {
        "ListRelatives": ("list_relatives", {"member_id": "$request.path.member_id"}, {}),
        "RemoveRelative": (
            "remove_relative",
            {"member_id": "$request.path.member_id", "relative_member_id": "$response.body#/member_id"},
            {},
        ),
    },
    "post_credit_batch": {"GetCreditBatch": ("get_credit_batch", {"batch_id": "$response.body#/id"}, {})},
    **{f"{step}_service_request": _SERVICE_REQUEST_LINKS for step in ("create", *_SERVICE_REQUEST_STEPS)},
}
# people: what a new member's id feeds.
LINKS["create_member"] |= {
    "ChangeMember": ("change_member", {"member_id": "$response.body#/id"}, {}),
    "SetPin": ("set_member_pin", {"member_id": "$response.body#/id"}, {}),
    "AddRelative": ("add_relative", {"member_id": "$response.body#/id"}, {}),
    "ListRelatives": ("list_relatives", {"member_id": "$response.body#/id"}, {}),
}

# Operations whose success can also come in another media type, chosen by the Accept header:
# operationId -> {media type: OpenAPI media type object}.
ALTERNATE_CONTENT: dict[str, dict[str, dict[str, Any]]] = {
    "monthly_report": {report_csv.MEDIA_TYPE: dict(report_csv.OPENAPI_CONTENT)},
}
# passbook: the PDF, bytes (its only success media type; this replaces Litestar's plain string).
ALTERNATE_CONTENT["get_passbook"] = {
    "application/pdf": {"schema": {"type": "string", "format": "binary", "description": "the passbook, a PDF"}}
}
# Headers such an answer may carry.
ATTACHMENT_HEADER = {
    "description": "A file name for the download (CSV and PDF answers)",
    "required": False,
    "schema": {"type": "string"},
}

# Statuses whose answers are remembered under an Idempotency-Key and replayed.
_REMEMBERED_STATUSES = sorted({entry.status for entry in CODES.values() if entry.remembered})


def operation_id(handler: Any, *_: Any) -> str:
    """Short and stable: the handler's function name (`post_credit`), unique across the service."""
    return str(handler.handler_name)


def _request_model_classes() -> list[type[Any]]:
    seen: list[type[Any]] = []
    pending = list(RequestBody.__subclasses__())
    while pending:
        model = pending.pop()
        seen.append(model)
        pending.extend(model.__subclasses__())
    return seen


def _request_models() -> set[str]:
    return {model.__name__ for model in _request_model_classes()}


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _name_enums(document: dict[str, Any]) -> None:
    """Replace every inline enum by a reference to its one named schema (an unnamed enum is a bug).

    A nullable enum (`type: [null, string]`, null among the values) becomes the reference or null;
    in a query parameter, where null cannot be written, just the reference.
    """
    by_values = {frozenset(values): name for name, values in NAMED_ENUMS.items()}
    for path_item in document["paths"].values():
        for operation in path_item.values():
            for parameter in operation.get("parameters", []) if isinstance(operation, dict) else []:
                schema = parameter["schema"]
                if parameter["in"] == "query" and None in schema.get("enum", []):
                    schema["enum"] = [value for value in schema["enum"] if value is not None]
                    schema["type"] = "string"
    for node in _walk(document):
        values = node.get("enum")
        if values is None or "x-problem-codes" in node or node.get("type") not in ("string", ["null", "string"]):
            continue
        nullable = None in values
        name = by_values.get(frozenset(value for value in values if value is not None))
        if name is None:
            raise ValueError(f"an enum without a name in NAMED_ENUMS: {values}")
        for key in ("type", "enum"):
            node.pop(key)
        reference = {"$ref": f"#/components/schemas/{name}"}
        if nullable:
            node["oneOf"] = [reference, {"type": "null"}]
        else:
            node.update(reference)
    schemas = document["components"]["schemas"]
    for name, values in NAMED_ENUMS.items():
        schemas[name] = {"type": "string", "enum": list(values), "title": name}


def _integer_lower_bounds(model: type[Any]) -> Iterator[tuple[str, int]]:
    """(JSON name, lower bound) of each integer field of a request model that has one, optional or not."""
    info = msgspec.inspect.type_info(model)
    assert isinstance(info, msgspec.inspect.StructType)
    for field in info.fields:
        options = field.type.types if isinstance(field.type, msgspec.inspect.UnionType) else (field.type,)
        for option in options:
            if isinstance(option, msgspec.inspect.IntType) and option.ge is not None:
                yield field.encode_name, option.ge


def _restore_lower_bounds(schemas: dict[str, Any]) -> None:
    """Litestar leaves out a lower bound of 0 of an optional integer (`ge=0` reads as no bound), so
    the document would call -5 valid where the service answers 400. Said again from the models."""
    for model in _request_model_classes():
        schema = schemas.get(model.__name__)
        if schema is None:
            continue
        for name, bound in _integer_lower_bounds(model):
            prop = schema.get("properties", {}).get(name)
            if prop is not None and "minimum" not in prop and "$ref" not in prop:
                prop["minimum"] = bound


def _problem_schema(codes: list[str]) -> dict[str, Any]:
    return {
        "allOf": [{"$ref": "#/components/schemas/Problem"}],
        "properties": {"code": {"type": "string", "enum": codes, "x-problem-codes": True}},
    }


def _header(name: str) -> dict[str, Any]:
    return copy.deepcopy(HEADERS[name])


def _require_idempotency_key(operation: dict[str, Any]) -> bool:
    """Declare the Idempotency-Key a route requires (its handler takes it as optional, so that a
    missing key is answered with its own code); True when the operation has one."""
    keyed = False
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "header" and parameter["name"].lower() == "idempotency-key":
            keyed = True
            parameter.update(required=True, schema=dict(IDEMPOTENCY_KEY_SCHEMA))
            parameter.pop("description", None)
    return keyed


def _finish_query_parameters(operation: dict[str, Any]) -> None:
    """A query string cannot say null: an optional parameter is left out instead, so its schema is
    the value's alone (`null` itself is refused, see timebank.http.query)."""
    for parameter in operation.get("parameters", []):
        schema = parameter["schema"]
        options = schema.get("oneOf", [])
        if parameter["in"] == "query" and {"type": "null"} in options:
            (value,) = [option for option in options if option != {"type": "null"}]
            del schema["oneOf"]
            parameter["schema"] = {**value, **schema}


def _finish_body(operation: dict[str, Any]) -> None:
    body = operation.get("requestBody")
    if body is None:
        return
    schema = body["content"]["application/json"]["schema"]
    options = schema.get("oneOf", [])
    if {"type": "null"} in options:
        # An optional body (`data: X | None = None`): it may be left out, and when sent it is an X.
        body["required"] = False
        (model,) = [option for option in options if option != {"type": "null"}]
        body["content"]["application/json"]["schema"] = model


def _finish_problem(where: str, response: dict[str, Any]) -> None:
    content = response.get("content", {}).get(PROBLEM_MEDIA_TYPE)
    if content is None:
        return
    examples = content.pop("examples", None) or {}
    codes = [example["value"]["code"] for example in examples.values()]
    if not codes:
        raise ValueError(f"{where}: a problem response without its codes")
    content["schema"] = _problem_schema(codes)
    content["examples"] = {example["value"]["code"]: example for example in examples.values()}


def _finish_operation(path: str, method: str, operation: dict[str, Any], public: bool) -> None:
    name = operation["operationId"]
    if public:
        operation["security"] = []
    keyed = _require_idempotency_key(operation)
    _finish_query_parameters(operation)
    _finish_body(operation)
    responses = operation["responses"]
    for status in [s for s, r in responses.items() if int(s) >= 400 and PROBLEM_MEDIA_TYPE not in r.get("content", {})]:
        # Litestar adds a generic 400 to handlers with parameters; the ones this service can send
        # are declared by the route, as problem+json.
        del responses[status]
    for status, response in responses.items():
        code = int(status)
        if code == 204:
            # No Content: no body and so no media type (Litestar documents `null` as JSON).
            response.pop("content", None)
        headers = response.setdefault("headers", {})
        headers["X-Request-ID"] = _header("X-Request-ID")
        if code == 201:
            headers["Location"] = _header("Location")
        if keyed and (code < 300 or code in _REMEMBERED_STATUSES):
            headers["Idempotent-Replayed"] = _header("Idempotent-Replayed")
        if code in (429, 503) or (code == 409 and "not_yet_logged" in response.get("description", "")):
            headers["Retry-After"] = _header("Retry-After")
        _finish_problem(f"{method.upper()} {path} {status}", response)
        if code < 300 and name in ALTERNATE_CONTENT:
            response.setdefault("content", {}).update(copy.deepcopy(ALTERNATE_CONTENT[name]))
            headers["Content-Disposition"] = copy.deepcopy(ATTACHMENT_HEADER)
        if code < 300 and name in LINKS:
            response["links"] = {
                link: {"operationId": target, "parameters": dict(parameters)}
                | ({"requestBody": dict(body)} if body else {})
                for link, (target, parameters, body) in LINKS[name].items()
            }


def finish(schema: OpenAPI, public_operations: set[str]) -> dict[str, Any]:
    """The finished document as a JSON-ready dict (the input is left unchanged)."""
    document: dict[str, Any] = copy.deepcopy(schema.to_schema())
    schemas = document["components"]["schemas"]
    for name in _request_models():
        if name in schemas:
            schemas[name]["additionalProperties"] = False
    _restore_lower_bounds(schemas)
    schemas["ProblemCode"] = {
        "type": "string",
        "enum": list(CODES),
        "title": "ProblemCode",
        "description": "The stable error codes; each problem response lists the ones it can carry.",
        "x-problem-codes": True,
    }
    schemas["Problem"]["properties"]["code"] = {"$ref": "#/components/schemas/ProblemCode"}
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if isinstance(operation, dict) and "responses" in operation:
                _finish_operation(path, method, operation, operation["operationId"] in public_operations)
    _name_enums(document)
    for node in _walk(document):
        node.pop("x-problem-codes", None)
    return document


def public_operations(app: Litestar) -> set[str]:
    """Operation ids of the handlers that need no token (`opt={"public": True}`)."""
    return {
        handler.handler_name
        for route in app.routes
        for handler in getattr(route, "route_handlers", ())
        if handler.opt.get("public")
    }


class FinishedJsonPlugin(OpenAPIRenderPlugin):
    """Serves the finished document as JSON, built once per application."""

    def __init__(self, path: str = "/openapi.json") -> None:
        super().__init__(path=path, media_type=OpenAPIMediaType.OPENAPI_JSON)
        self._rendered: bytes | None = None

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        if self._rendered is None:
            app = request.app
            self._rendered = self.render_json(request, finish(app.openapi_schema, public_operations(app)))
        return self._rendered


def _html(text: object) -> str:
    return html.escape(str(text), quote=True)


def render_reference(document: dict[str, Any]) -> str:
    """The document as one plain HTML page: every operation, its parameters, body and answers.

    Self-contained (no script, no style sheet from elsewhere), so it works offline and behind any proxy.
    """
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{_html(document['info']['title'])} API</title>",
        "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
        "code{background:#f3f3f3;padding:0 .2em}h2{margin-top:2.5rem;border-top:1px solid #ccc;padding-top:1rem}"
        "td,th{text-align:left;vertical-align:top;padding:.2rem .6rem}</style></head><body>",
        f"<h1>{_html(document['info']['title'])} API {_html(document['info']['version'])}</h1>",
        f"<p>{_html(document['info'].get('description', ''))}</p>",
        "<p>The machine-readable document: <a href='/schema/openapi.json'><code>/schema/openapi.json</code></a>."
        " Conventions (tokens, Idempotency-Key, errors, paging, dates): <code>docs/guide.md</code>;"
        " error codes: <code>docs/errors.md</code>.</p>",
    ]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            name = _html(operation["operationId"])
            public = " — no token needed" if operation.get("security") == [] else ""
            parts.append(
                f"<h2 id='{name}'><code>{_html(method.upper())} {_html(path)}</code></h2>"
                f"<p>{_html(operation.get('summary', ''))}{public} (operationId <code>{name}</code>)</p>"
            )
            parameters = operation.get("parameters", [])
            if parameters:
                parts.append("<table><tr><th>parameter</th><th>in</th><th>required</th><th>description</th></tr>")
                parts.extend(
                    f"<tr><td><code>{_html(p['name'])}</code></td><td>{_html(p['in'])}</td>"
                    f"<td>{'yes' if p.get('required') else 'no'}</td>"
                    f"<td>{_html(p.get('description') or p['schema'].get('description', ''))}</td></tr>"
                    for p in parameters
                )
                parts.append("</table>")
            body = operation.get("requestBody")
            if body is not None:
                reference = body["content"]["application/json"]["schema"].get("$ref", "")
                parts.append(
                    f"<p>Body: <code>{_html(reference.rsplit('/', 1)[-1])}</code>"
                    f"{'' if body.get('required', True) else ' (optional)'}</p>"
                )
            parts.append("<table><tr><th>status</th><th>answer</th></tr>")
            for status, response in operation["responses"].items():
                parts.append(f"<tr><td>{_html(status)}</td><td>{_html(response.get('description', ''))}</td></tr>")
            parts.append("</table>")
    parts.append("</body></html>")
    return "".join(parts)


class ReferencePagePlugin(OpenAPIRenderPlugin):
    """Serves the finished document as one plain HTML page at /schema, built once per application."""

    def __init__(self, path: str = "/") -> None:
        super().__init__(path=path)
        self._rendered: bytes | None = None

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        if self._rendered is None:
            app = request.app
            self._rendered = render_reference(finish(app.openapi_schema, public_operations(app))).encode()
        return self._rendered
