"""HTTP route for the monthly report: JSON, or CSV for `Accept: text/csv`."""

from __future__ import annotations

from typing import Annotated, Any, cast

from litestar import Request, Response, Router, get
from litestar.datastructures import State
from litestar.params import FromPath, QueryParameter

from timebank.http.context import Caller, Db
from timebank.http.months import Month, parse_month
from timebank.http.responses import problems
from timebank.i18n import CONTENT_LANGUAGE, negotiate
from timebank.reports import csv, service
from timebank.reports.models import MonthlyReport

JSON = "application/json"
IncludeChildren = Annotated[
    bool,
    QueryParameter(
        description="Sum the community and every community below it (a street office's communities)",
    ),
]


def wants_csv(request: Request[Any, Any, State]) -> bool:
    """Whether the caller prefers CSV to JSON (Accept); JSON when it names neither, or garbles the header."""
    try:
        return request.accept.best_match([JSON, csv.MEDIA_TYPE], default=JSON) == csv.MEDIA_TYPE
    except ValueError:
        return False


@get(
    "/v1/communities/{slug:str}/reports/monthly",
    responses=problems("invalid_request", "forbidden", "not_found"),
    summary="A community's monthly report (JSON, or CSV with Accept: text/csv)",
    description=(
        "The month's figures from the ledger, in total, per grid and per service type. The month is bounded"
        " in the community's time zone. `Accept: text/csv` answers the same as CSV (UTF-8 with a byte order"
        " mark, a row per grid and a total row; column names in English, or in Chinese with"
        " `Accept-Language: zh-CN`). Admins, and the community's coordinators and auditors."
    ),
)
async def monthly_report(
    slug: FromPath[str],
    db: Db,
    principal: Caller,
    request: Request[Any, Any, State],
    month: Month = None,
    include_children: IncludeChildren = False,
) -> Response[MonthlyReport]:
    report = await service.monthly_report(db, principal, slug, parse_month("month", month), include_children)
    if not wants_csv(request):
        return Response(report, headers={"Vary": "Accept"})
    language = negotiate(request.headers.getall("accept-language", []))
    body = csv.render(report, language)
    headers = {
        "Content-Disposition": f'attachment; filename="{csv.filename(report)}"',
        "Content-Language": CONTENT_LANGUAGE[language],
        "Vary": "Accept, Accept-Language",
    }
    # The same route answers bytes for CSV; the document declares both media types of its 200.
    return cast("Response[MonthlyReport]", Response(body, media_type=csv.MEDIA_TYPE, headers=headers))


router = Router(path="/", route_handlers=[monthly_report])
