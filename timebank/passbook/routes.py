"""HTTP route for the paper passbook (存折): a member's entries as a PDF."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Request, Response, Router, get
from litestar.datastructures import State
from litestar.params import FromPath

from timebank.http.context import Caller, Db
from timebank.http.moments import FromMoment, ToMoment, parse_moment
from timebank.http.responses import problems
from timebank.members import service as members
from timebank.passbook.service import PrintedPassbook, print_passbook

MEDIA_TYPE = "application/pdf"


@get(
    "/v1/members/{member_id:uuid}/passbook.pdf",
    media_type=MEDIA_TYPE,
    responses=problems("invalid_request", "forbidden", "not_found", "invalid_date_range", "pdf_font_missing"),
    summary="A member's paper passbook (存折) as a PDF in Chinese",
    description=(
        "Every entry of the period with its running balance, in large type, dates in the community's time zone;"
        " each page carries a QR code holding the C2SP tlog-proof of its last entry in the public log, against"
        " the latest signed checkpoint (size and root-hash prefix printed beside it). Entries the log does not"
        " hold yet are marked ※. The member itself, and its community's coordinators and auditors."
    ),
)
async def get_passbook(
    member_id: FromPath[uuid.UUID],
    db: Db,
    principal: Caller,
    request: Request[Any, Any, State],
    start: FromMoment = None,
    end: ToMoment = None,
) -> Response[bytes]:
    bounds = parse_moment("from", start), parse_moment("to", end)
    await members.get_visible(db, principal, member_id)  # 404 / 403 as for reading the member
    printed = await print_passbook(db.run, member_id, *bounds, request.app.state.settings.pdf_font)
    return passbook_response(printed)


def passbook_response(printed: PrintedPassbook) -> Response[bytes]:
    """The PDF shown in the browser (not saved as a download), and kept in no cache: it names a person."""
    headers = {
        "Content-Disposition": f'inline; filename="{printed.filename}"',
        "Cache-Control": "private, no-store",
    }
    return Response(printed.pdf, media_type=MEDIA_TYPE, headers=headers)


router = Router(path="/", route_handlers=[get_passbook], tags=["members"])
