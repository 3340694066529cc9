"""The forms of a drawn page, as a browser would send them, and the pages' routes from the app itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from litestar import Litestar
from litestar.routes import HTTPRoute


@dataclass
class Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)


class _Forms(HTMLParser):
    def __init__(self, page_path: str) -> None:
        super().__init__(convert_charrefs=True)
        self.page_path = page_path
        self.forms: list[Form] = []
        self.select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(Form(values.get("action") or self.page_path, values.get("method", "get").lower()))
        elif not self.forms:
            return
        elif tag in ("input", "textarea") and values.get("name"):
            if values.get("type") in ("checkbox", "radio") and "checked" not in values:
                self.forms[-1].fields.setdefault(values["name"], values.get("value", "on"))
            else:
                self.forms[-1].fields[values["name"]] = values.get("value", "")
        elif tag == "select" and values.get("name"):
            self.select = values["name"]
        elif (
            tag == "option"
            and self.select is not None
            and (self.select not in self.forms[-1].fields or "selected" in values)
        ):
            self.forms[-1].fields[self.select] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self.select = None


def forms_of(html: str, page_path: str) -> list[Form]:
    parser = _Forms(page_path)
    parser.feed(html)
    return parser.forms


@dataclass(frozen=True)
class PageRoute:
    path: str  # as declared: /login/card/{secret:str}
    method: str
    parameters: tuple[str, ...]  # the path's parameter names


def page_routes(app: Litestar) -> list[PageRoute]:
    """Every GET and POST route of the pages' router (tagged "pages"), as the app holds them now."""
    found: list[PageRoute] = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if "pages" not in handler.resolve_tags():
                continue
            for method in sorted(handler.http_methods & {"GET", "POST", "PUT", "PATCH", "DELETE"}):
                found.append(PageRoute(route.path, method, tuple(route.path_parameters)))
    return found


def fill(path: str, values: dict[str, Any]) -> str:
    """The path with each {name:type} replaced by values[name]."""
    for name, value in values.items():
        for kind in ("str", "uuid", "int", "path"):
            path = path.replace(f"{{{name}:{kind}}}", str(value))
    return path
