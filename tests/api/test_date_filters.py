"""`from`, `to`, `as_of` and `after` take a date (midnight at its start in the community's time zone)
or an RFC 3339 timestamp with a zone; anything else is 400 naming the parameter as it was sent.

Kiritimati (UTC+14) and Pago Pago (UTC-11) are 25 hours apart: a date read in UTC instead of the
community's zone would break at least one of the checks below at any hour of the day.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.client import Api, Community, Member

EAST = "Pacific/Kiritimati"
WEST = "Pacific/Pago_Pago"


def today_in(zone: str) -> date:
    return datetime.now(ZoneInfo(zone)).date()


async def ok(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def funded(api: Api, zone: str) -> tuple[Community, Member]:
    community = await api.community(time_zone=zone)
    volunteer = await api.member(community, "volunteer")
    response = await api.credit(volunteer, 30)
    assert response.status_code == 201, response.text
    return community, volunteer


async def test_dates_in_entry_and_transaction_filters_are_midnight_in_the_community(api: Api) -> None:
    for zone, day, from_finds, to_finds in (
        # Today's midnight has passed where the community is; tomorrow's has not.
        (EAST, today_in(EAST), True, False),
        (WEST, today_in(WEST) + timedelta(days=1), False, True),
    ):
        community, volunteer = await funded(api, zone)
        for path in (
            f"/v1/accounts/{volunteer.account_id}/entries",
            f"/v1/communities/{community.slug}/transactions",
        ):
            since = await ok(await api.get(path, api.admin_token, **{"from": day.isoformat()}))
            until = await ok(await api.get(path, api.admin_token, to=day.isoformat()))
            assert (len(since["items"]) == 1, len(until["items"]) == 1) == (from_finds, to_finds), (zone, path, day)


@pytest.mark.parametrize("zone", [EAST, WEST, "Asia/Shanghai"])
async def test_a_balance_as_of_a_date_is_at_that_days_start(api: Api, zone: str) -> None:
    _, volunteer = await funded(api, zone)
    path = f"/v1/accounts/{volunteer.account_id}/balance"
    today = today_in(zone)
    for day, balance in ((today, 0), (today + timedelta(days=1), 30)):
        answer = await ok(await api.get(path, volunteer.token, as_of=day.isoformat()))
        assert answer["balance_minutes"] == balance
        midnight = datetime.combine(day, time(), ZoneInfo(zone))
        assert datetime.fromisoformat(answer["as_of"]) == midnight


async def test_audit_after_a_date_uses_the_community_named_else_the_callers(api: Api) -> None:
    east, _ = await funded(api, EAST)
    west, _ = await funded(api, WEST)
    west_coordinator = await api.member(west, "coordinator")

    async def count(token: str, **params: Any) -> int:
        return len((await ok(await api.get("/v1/audit-events", token, limit=500, **params)))["items"])

    east_today = today_in(EAST).isoformat()
    west_tomorrow = (today_in(WEST) + timedelta(days=1)).isoformat()
    assert await count(api.admin_token, community=east.slug, after=east_today) >= 4
    assert await count(api.admin_token, community=west.slug, after=west_tomorrow) == 0
    # No community named: the caller's own community's time zone.
    assert await count(west_coordinator.token, after=west_tomorrow) == 0
    assert await count(west_coordinator.token, after=today_in(WEST).isoformat()) >= 4
    # An admin belongs to no community: UTC.
    tomorrow_utc = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
    assert await count(api.admin_token, after=tomorrow_utc) == 0


ACCEPTED = [
    "2026-12-01",
    "1900-01-01",
    "2999-12-31",
    "2026-12-01T08:30:00Z",
    "2026-12-01T08:30:00+08:00",
    "2026-12-01T08:30:00.123456-05:30",
    "2026-12-01t08:30:00z",
    "2026-12-01T08:30:00.1234567891Z",  # RFC 3339 sets no limit on the fraction's digits
]
REFUSED = [
    "2026-12-01 08:30:00Z",  # a space is no RFC 3339 date-time, which is what the schema declares
    "105318918",  # seconds since 1970, as a lenient parser would read it
    "0",
    "-1",
    "1.5",
    "yesterday",
    "",
    "2026-12-1",
    "20261201",
    "2026-02-30",
    "1899-12-31",
    "3000-01-01",
    "2026-12-01T08:30:00",  # no zone
    "2026-12-01T08:30",
    "2026-12-01T24:00:00Z",
    "2026-12-01T08:30:00 08:00",  # a + sent unencoded arrives as a space
    "2026-12-01T08:30:00+0800",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "2026-W48-2",
    " 2026-12-01",
    "2026-12-01T08:30:00Z" + "0" * 60,
]


def targets(community: Community, member: Member) -> list[tuple[str, str]]:
    """(path, parameter) for every moment parameter."""
    return [
        (f"/v1/accounts/{member.account_id}/entries", "from"),
        (f"/v1/accounts/{member.account_id}/entries", "to"),
        (f"/v1/communities/{community.slug}/transactions", "from"),
        (f"/v1/communities/{community.slug}/transactions", "to"),
        (f"/v1/accounts/{member.account_id}/balance", "as_of"),
        ("/v1/audit-events", "after"),
    ]


@pytest.fixture
async def place(api: Api) -> tuple[Community, Member]:
    return await funded(api, "Asia/Shanghai")


@pytest.mark.parametrize("value", ACCEPTED)
async def test_dates_and_timestamps_with_a_zone_are_accepted(
    api: Api, place: tuple[Community, Member], value: str
) -> None:
    for path, name in targets(*place):
        response = await api.get(path, api.admin_token, **{name: value})
        assert response.status_code == 200, (path, name, response.text)


@pytest.mark.parametrize("value", REFUSED)
async def test_anything_else_is_refused_naming_the_parameter(
    api: Api, place: tuple[Community, Member], value: str
) -> None:
    for path, name in targets(*place):
        response = await api.get(path, api.admin_token, **{name: value})
        assert response.status_code == 400, (path, name, value, response.text)
        body = response.json()
        assert body["code"] == "invalid_request"
        assert [e["field"] for e in body["errors"]] == [name], body
        assert body["detail"].startswith(f"{name} "), body


async def test_to_before_from_is_refused(api: Api, place: tuple[Community, Member]) -> None:
    community, member = place
    for path in (f"/v1/accounts/{member.account_id}/entries", f"/v1/communities/{community.slug}/transactions"):
        response = await api.get(path, api.admin_token, **{"from": "2026-12-02", "to": "2026-12-01T23:00:00+08:00"})
        # Each is well formed alone: the order across the two is a rule, 422 with its own code.
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "invalid_date_range"
        assert [e["field"] for e in response.json()["errors"]] == ["to"]
        # The same day as both bounds is an empty range, not an error.
        same = await api.get(path, api.admin_token, **{"from": "2026-12-01", "to": "2026-12-01"})
        assert (same.status_code, same.json()["items"]) == (200, [])


async def test_the_openapi_document_declares_a_date_or_a_timestamp(api: Api) -> None:
    document = await ok(await api.get("/schema/openapi.json", None))
    paths = document["paths"]
    for path, name in (
        ("/v1/accounts/{account_id}/entries", "from"),
        ("/v1/accounts/{account_id}/entries", "to"),
        ("/v1/communities/{slug}/transactions", "from"),
        ("/v1/communities/{slug}/transactions", "to"),
        ("/v1/accounts/{account_id}/balance", "as_of"),
        ("/v1/audit-events", "after"),
    ):
        [parameter] = [p for p in paths[path]["get"]["parameters"] if p["name"] == name]
        schema = parameter["schema"]
        assert {(s["type"], s["format"]) for s in schema["anyOf"]} == {("string", "date"), ("string", "date-time")}
        assert "time zone" in parameter["description"]
