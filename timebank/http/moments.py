"""Moments in query strings (`from`, `to`, `as_of`, `after`): a date or an RFC 3339 timestamp.

A date (`2026-12-01`) stands for midnight at the start of that day in a time zone, usually the
community's; a timestamp must carry its zone (`2026-12-01T08:30:00+08:00`, `...Z`). Both are parsed
here from the raw string, not by the framework, which would also take a bare number as seconds since
1970 or a timestamp without a zone. Anything else, and years outside 1900–2999, is 400
invalid_request naming the parameter exactly as the caller sent it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Annotated

from litestar.openapi.spec import OpenAPIFormat, OpenAPIType, Schema
from litestar.params import QueryParameter

from timebank.db import Database
from timebank.errors import DomainError, InvalidRequestError
from timebank.http.types import EARLIEST_DATE, LATEST_DATE

MAX_MOMENT_CHARS = 64
UTC_ZONE = "UTC"

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# RFC 3339 exactly (what the schema's `date-time` admits): a T, any fraction, a zone.
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})")
# Years 1900–2999 as written, for the schema: the same window parse_moment checks.
_YEAR_PATTERN = "^(19[0-9]{2}|2[0-9]{3})-"

COMMUNITY_ZONE = "the community's time zone"


def moment_parameter(name: str, description: str, zone: str = COMMUNITY_ZONE) -> QueryParameter:
    """The OpenAPI declaration of a moment parameter: a string that is a date or a date-time."""
    help_text = (
        f"{description}. A date (2026-12-01: midnight at its start in {zone})"
        " or an RFC 3339 timestamp with a zone (2026-12-01T08:30:00+08:00)."
    )
    return QueryParameter(
        name=name,
        description=help_text,
        # Length and form are checked by parse_moment, which names the parameter as it was sent.
        schema_extra={
            "one_of": None,
            "type": None,
            "description": help_text,
            "any_of": [
                Schema(
                    type=OpenAPIType.STRING,
                    format=OpenAPIFormat.DATE,
                    pattern=_YEAR_PATTERN,
                    examples=["2026-12-01"],
                ),
                Schema(
                    type=OpenAPIType.STRING,
                    format=OpenAPIFormat.DATE_TIME,
                    pattern=_YEAR_PATTERN,
                    max_length=MAX_MOMENT_CHARS,
                    examples=["2026-12-01T08:30:00+08:00"],
                ),
            ],
        },
    )


# Route parameter types: the raw string, parsed by parse_moment.
FromMoment = Annotated[str | None, moment_parameter("from", "Created at or after this moment")]
ToMoment = Annotated[str | None, moment_parameter("to", "Created before this moment")]


@dataclass(frozen=True)
class Moment:
    """A parsed moment parameter: a timestamp, or a day whose midnight depends on the time zone."""

    name: str
    timestamp: datetime | None = None
    day: date | None = None


def _refuse(name: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"{name} must be a date (2026-12-01) or an RFC 3339 timestamp with a zone (2026-12-01T08:30:00+08:00)",
        errors=[{"field": name, "message": "a date YYYY-MM-DD or an RFC 3339 timestamp with a zone"}],
    )


def _check_year(name: str, year: int) -> None:
    if not EARLIEST_DATE.year <= year <= LATEST_DATE.year:
        raise InvalidRequestError(
            f"{name} must lie between {EARLIEST_DATE.year} and {LATEST_DATE.year}",
            errors=[{"field": name, "message": "a moment between years 1900 and 2999"}],
        )


def parse_moment(name: str, raw: str | None) -> Moment | None:
    """The moment a query parameter names, or None when it was not given; 400 for anything else."""
    if raw is None:
        return None
    if len(raw) > MAX_MOMENT_CHARS:
        raise _refuse(name)
    try:
        if _DATE.fullmatch(raw):
            day = date.fromisoformat(raw)
            _check_year(name, day.year)
            return Moment(name, day=day)
        if _TIMESTAMP.fullmatch(raw):
            moment = datetime.fromisoformat(raw.upper())
            _check_year(name, moment.year)
            # Within 1900–2999 as written, so the UTC form is a moment PostgreSQL can take.
            return Moment(name, timestamp=moment.astimezone(UTC))
    except ValueError:  # a day or hour that does not exist: 2026-02-30, 24:00:00, 08:30:60
        pass
    raise _refuse(name)


async def resolve_moments(db: Database, time_zone: str, *moments: Moment | None) -> list[datetime | None]:
    """Each moment as a timestamp: days become midnight at their start in `time_zone`.

    PostgreSQL does the conversion (one round trip, only when a day was given): it validated the time
    zone against its own zone data, so it is the one that knows what that zone's midnight was.
    """
    days = [m.day for m in moments if m is not None and m.day is not None]
    midnights: dict[date, datetime] = {}
    if days and time_zone == UTC_ZONE:
        midnights = {day: datetime.combine(day, time(), UTC) for day in days}
    elif days:
        rows = await db.fetch(
            "select d as day, d::timestamp at time zone $2 as midnight from unnest($1::date[]) d", days, time_zone
        )
        midnights = {row["day"]: row["midnight"] for row in rows}
    resolved: list[datetime | None] = []
    for moment in moments:
        if moment is None:
            resolved.append(None)
        elif moment.day is not None:
            resolved.append(midnights[moment.day])
        else:
            resolved.append(moment.timestamp)
    return resolved


def check_order(start: datetime | None, end: datetime | None) -> None:
    """`to` must not lie before `from`."""
    if start is not None and end is not None and end < start:
        # Each is well formed on its own, so this is no malformed request: a rule across the two (422).
        raise DomainError(
            "`to` is before `from`", code="invalid_date_range", errors=[{"field": "to", "message": "before from"}]
        )
