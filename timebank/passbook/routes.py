"""HTTP route for the paper passbook (存折): a member's entries as a PDF."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from litestar import Request, Response, Router, get
from litestar.datastructures import State
from litestar.params import FromPath

from timebank.http.context import Caller, Db
from timebank.http.moments import FromMoment, ToMoment, parse_moment
from timebank.http.responses import problems
from timebank.members import service as members
from timebank.passbook import service
from timebank.passbook.fonts import find_font
from timebank.passbook.render import ROWS_PER_PAGE, render_passbook

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
    member = await members.get_visible(db, principal, member_id)  # 404 / 403 as for reading the member
    font = await asyncio.to_thread(find_font, request.app.state.settings.pdf_font)
    passbook = await service.load_passbook(db, member_id, *bounds, ROWS_PER_PAGE)
    # Laying out and subsetting the font take a second or two of CPU: not on the event loop.
    body = await asyncio.to_thread(render_passbook, passbook, font)
    headers = {
        "Content-Disposition": f'inline; filename="passbook-{member.member_no}.pdf"',
        "Cache-Control": "private, no-store",
    }
    return Response(body, media_type=MEDIA_TYPE, headers=headers)


router = Router(path="/", route_handlers=[get_passbook], tags=["members"])
