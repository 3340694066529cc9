"""Field types with their limits, shared by the request models of every domain."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import msgspec
from litestar.params import QueryParameter

from timebank.errors import InvalidRequestError

# Strings may not contain NUL: PostgreSQL cannot store it, so it is refused at the door.
NO_NUL = r"^[^\x00]*$"

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=NO_NUL)]
Description = Annotated[str, msgspec.Meta(max_length=500, pattern=NO_NUL)]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=500, pattern=NO_NUL)]
ShortText = Annotated[str, msgspec.Meta(max_length=100, pattern=NO_NUL)]
Phone = Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=r"^[0-9+() -]+$")]
Slug = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")]
# Dates and moments a person can mean lie in years 1900..2999 (as written): asyncpg would store
# year 1 and year 9999 as -infinity and infinity, which no one means and which no longer read back.
# The schema says so with a pattern; the server checks the same (require_calendar_dates, require_zone).
EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(2999, 12, 31)
_YEAR = "(19[0-9]{2}|2[0-9]{3})"
CalendarDate = Annotated[
    date,
    msgspec.Meta(
        extra_json_schema={
            "description": "YYYY-MM-DD, between 1900-01-01 and 2999-12-31",
            "extra": {"pattern": f"^{_YEAR}-[0-9]{{2}}-[0-9]{{2}}$"},
        }
    ),
]
AwareDatetime = Annotated[
    datetime,
    msgspec.Meta(
        tz=True,
        extra_json_schema={
            "description": "RFC 3339 with a zone, in years 1900–2999",
            "extra": {"pattern": f"^{_YEAR}-.*([Zz]|[+-][0-9]{{2}}:[0-9]{{2}})$"},
        },
    ),
]
# Amounts are whole minutes, at least 1. Their upper bound is the community's policy (422
# amount_out_of_range, as is 0 or less: API.md's contract), so the wire type bounds them only to
# what PostgreSQL's bigint can hold.
Minutes = Annotated[
    int,
    msgspec.Meta(
        extra_json_schema={
            "description": "whole minutes: at least 1, a multiple of the community's unit, at most its"
            " max_transaction_minutes (422 otherwise)",
            "extra": {"minimum": 1, "maximum": 2**63 - 1},
        }
    ),
]
MemberRole = Literal["volunteer", "resident", "coordinator", "auditor"]
# What a caller can be: a member's roles, or the admin and auditor principals that are no member.
PrincipalRole = Literal["admin", "volunteer", "resident", "coordinator", "auditor"]


class Request(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Base of every request body: unknown fields are refused."""


# Query parameters shared by list endpoints.
Limit = Annotated[int | None, QueryParameter(ge=1, le=500, description="page size (default 50, max 500)")]
Cursor = Annotated[
    str | None,
    QueryParameter(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="next_cursor of the previous page"
    ),
]


def require_zone(**moments: datetime | None) -> None:
    """Timestamps must carry a zone (RFC 3339; the query-string parser accepts naive ones) and lie
    within years 1900..2999 as written (so within a day of them in UTC, which PostgreSQL takes)."""
    for name, moment in moments.items():
        if moment is None:
            continue
        if moment.utcoffset() is None:
            raise InvalidRequestError(
                f"{name} needs a time zone, e.g. 2026-11-27T08:30:00Z",
                errors=[{"field": name, "message": "an RFC 3339 timestamp with a zone"}],
            )
        if not EARLIEST_DATE.year <= moment.year <= LATEST_DATE.year:
            raise InvalidRequestError(
                f"{name} must lie between {EARLIEST_DATE.year} and {LATEST_DATE.year}",
                errors=[{"field": name, "message": "a moment between years 1900 and 2999"}],
            )


def require_calendar_dates(**dates: date | None) -> None:
    """Dates must lie between 1900-01-01 and 2999-12-31."""
    for name, value in dates.items():
        if value is not None and not EARLIEST_DATE <= value <= LATEST_DATE:
            raise InvalidRequestError(
                f"{name} must be between {EARLIEST_DATE} and {LATEST_DATE}",
                errors=[{"field": f"$.{name}", "message": f"between {EARLIEST_DATE} and {LATEST_DATE}"}],
            )
