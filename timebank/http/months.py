"""Months in query strings (`month=2026-11`): a calendar month, bounded in a community's time zone.

Written exactly YYYY-MM, the month 01–12, the year 1900–2999 like every other date of the API.
`2026-1`, `2026-13`, `0000-01`, `2026-11-01` and the rest are 400 invalid_request naming the
parameter. The month's start and end (midnight of its first day and of the next month's first day)
are computed by PostgreSQL in the community's time zone, like the days of timebank.http.moments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from litestar.params import QueryParameter

from timebank.db import Database
from timebank.errors import InvalidRequestError
from timebank.http.types import EARLIEST_DATE, LATEST_DATE

MONTH_PATTERN = "^(19[0-9]{2}|2[0-9]{3})-(0[1-9]|1[0-2])$"
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")


def month_parameter(name: str, description: str) -> QueryParameter:
    """The OpenAPI declaration of a required month parameter (checked by parse_month, not the framework)."""
    help_text = f"{description}: YYYY-MM (2026-11), between 1900-01 and 2999-12"
    return QueryParameter(
        name=name,
        description=help_text,
        required=True,
        schema_extra={"pattern": MONTH_PATTERN, "examples": ["2026-11"], "description": help_text},
    )


Month = Annotated[str | None, month_parameter("month", "The calendar month, in the community's time zone")]


@dataclass(frozen=True)
class CalendarMonth:
    year: int
    month: int

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def parse_month(name: str, raw: str | None) -> CalendarMonth:
    """The month a query parameter names; 400 invalid_request, naming it, when missing or malformed."""
    if raw is None:
        raise InvalidRequestError(
            f"{name} is required: a month written YYYY-MM, such as 2026-11",
            errors=[{"field": name, "message": "required"}],
        )
    match = _MONTH.fullmatch(raw) if len(raw) == 7 else None
    if match is None or not 1 <= int(match[2]) <= 12:
        raise InvalidRequestError(
            f"{name} must be a month written YYYY-MM, such as 2026-11",
            errors=[{"field": name, "message": "a month YYYY-MM, the month 01 to 12"}],
        )
    year = int(match[1])
    if not EARLIEST_DATE.year <= year <= LATEST_DATE.year:
        raise InvalidRequestError(
            f"{name} must lie between {EARLIEST_DATE.year}-01 and {LATEST_DATE.year}-12",
            errors=[{"field": name, "message": "a month between 1900-01 and 2999-12"}],
        )
    return CalendarMonth(year, int(match[2]))


async def month_bounds(db: Database, time_zone: str, month: CalendarMonth) -> tuple[datetime, datetime]:
    """Midnight at the month's start and at the next month's start, in `time_zone`."""
    row = await db.fetchrow(
        "select d::timestamp at time zone $2 as start, (d + interval '1 month')::timestamp at time zone $2 as end"
        "  from (select make_date($1, $3, 1) as d) m",
        month.year,
        time_zone,
        month.month,
    )
    assert row is not None
    return row["start"], row["end"]
