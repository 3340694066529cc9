"""Service requests driven through the SQL operations, as the service role calls them."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from tests.sql.support import Ledger, Member, Result


def soon() -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)


async def create(ledger: Ledger, member: Member, minutes: int = 60, funding: str = "own", **kw: Any) -> Result:
    return await ledger.call("create_service_request", member.id, "meals", minutes, soon(), funding, "", **kw)


async def assign(ledger: Ledger, request_id: Any, provider: Member | None = None, **kw: Any) -> Result:
    return await ledger.call(
        "assign_service_request", uuid.UUID(str(request_id)), provider.id if provider else None, **kw
    )


async def check_in(ledger: Ledger, request_id: Any, **kw: Any) -> Result:
    return await ledger.call("check_in_service_request", uuid.UUID(str(request_id)), **kw)


async def report(ledger: Ledger, request_id: Any, minutes: int, **kw: Any) -> Result:
    return await ledger.call("report_service_request", uuid.UUID(str(request_id)), minutes, **kw)


async def confirm(ledger: Ledger, request_id: Any, rating: int = 5, minutes: int | None = None, **kw: Any) -> Result:
    return await ledger.call("confirm_service_request", uuid.UUID(str(request_id)), rating, None, minutes, **kw)


async def dispute(ledger: Ledger, request_id: Any, **kw: Any) -> Result:
    return await ledger.call("dispute_service_request", uuid.UUID(str(request_id)), "disputed", **kw)


async def cancel(ledger: Ledger, request_id: Any, **kw: Any) -> Result:
    return await ledger.call("cancel_service_request", uuid.UUID(str(request_id)), "cancelled", **kw)


async def done(elder: Ledger, provider: Ledger, request_id: Any, minutes: int) -> None:
    """Claimed by `provider` (a volunteer's Ledger), checked in, reported, and confirmed by `elder`."""
    await assign(provider, request_id)
    await check_in(provider, request_id)
    await report(provider, request_id, minutes)
    await confirm(elder, request_id)
