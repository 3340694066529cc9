"""A page's answer when something it did not plan for went wrong (the database away or too slow, a
bug): words on a page in the reader's language, never the API's problem+json.

The status, the log line and the audit of a refused write are the API's (handle_exception); only
the body is a page. Handlers answer every refusal they expect themselves, next to the field.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.datastructures import State

from timebank.http.problems import handle_exception
from timebank.pages.common import render


def page_trouble(request: Request[Any, Any, State], exc: Exception) -> Response[Any]:
    answered = handle_exception(request, exc)
    status = answered.status_code or 500
    page = render(request, "trouble.html", status, busy=status == 503, server_fault=status >= 500)
    page.background = answered.background
    retry_after = answered.headers.get("Retry-After")
    if retry_after is not None:
        page.headers["Retry-After"] = retry_after
    return page
