"""A community's policy: PUT replaces all of it, PATCH changes some of it, both audited before and after;
the time zone is an IANA name PostgreSQL knows, and service dates may not lie after today there."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from tests.client import Api

WHOLE = {
    "unit_minutes": 30,
    "max_transaction_minutes": 600,
    "max_balance_minutes": 6000,
    "overdraft_minutes": 60,
    "time_zone": "Asia/Urumqi",
    "volunteer_min_age": 18,
    "redeem_min_age": 60,
    "gift_scope": "relatives",
    "pool_requires_eligibility": True,
}
DEFAULTS = {
    "unit_minutes": 15,
    "max_transaction_minutes": 1440,
    "max_balance_minutes": 90000,
    "overdraft_minutes": 0,
    "time_zone": "Asia/Shanghai",
    "volunteer_min_age": None,
    "redeem_min_age": None,
    "gift_scope": "community",
    "pool_requires_eligibility": False,
}


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


def fields_of(body: dict[str, Any]) -> list[str]:
    return [e["field"] for e in body.get("errors") or []]


async def policy_events(owner: asyncpg.Connection, community_id: str) -> list[dict[str, Any]]:
    rows = await owner.fetch(
        "select details::text from audit_events where community_id = $1 and action = 'policy.changed' order by seq",
        uuid.UUID(community_id),
    )
    return [json.loads(r["details"]) for r in rows]


async def test_a_new_community_has_the_default_time_zone_or_the_one_given(api: Api) -> None:
    plain = await api.community()
    got = await api.get(f"/v1/communities/{plain.slug}", api.admin_token)
    assert got.json()["policy"] == DEFAULTS
    west = await api.community(time_zone="Asia/Urumqi", unit_minutes=10)
    got = await api.get(f"/v1/communities/{west.slug}", api.admin_token)
    assert got.json()["policy"] == DEFAULTS | {"time_zone": "Asia/Urumqi", "unit_minutes": 10}


async def test_put_needs_every_field_and_names_each_missing_one(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    path = f"/v1/communities/{community.slug}/policy"
    partial = await api.put(path, api.admin_token, {"unit_minutes": 30, "overdraft_minutes": 0})
    body = problem(partial, 400, "invalid_request")
    assert sorted(fields_of(body)) == [
        "$.gift_scope",
        "$.max_balance_minutes",
        "$.max_transaction_minutes",
        "$.pool_requires_eligibility",
        "$.redeem_min_age",
        "$.time_zone",
        "$.volunteer_min_age",
    ]
    assert all(name in body["detail"] for name in ("max_balance_minutes", "max_transaction_minutes", "time_zone"))
    empty = problem(await api.put(path, api.admin_token, {}), 400, "invalid_request")
    assert sorted(fields_of(empty)) == sorted(f"$.{name}" for name in DEFAULTS)
    assert await policy_events(owner, community.id) == []
    # The whole policy: replaced, and the event holds every field before and after.
    whole = await api.put(path, api.admin_token, WHOLE)
    assert whole.status_code == 200, whole.text
    assert whole.json()["policy"] == WHOLE
    assert await policy_events(owner, community.id) == [{"before": DEFAULTS, "after": WHOLE}]


async def test_patch_changes_only_the_fields_given(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community(max_balance_minutes=3000)
    before = DEFAULTS | {"max_balance_minutes": 3000}
    path = f"/v1/communities/{community.slug}/policy"
    changed = await api.patch(path, api.admin_token, {"time_zone": "Asia/Hong_Kong", "unit_minutes": 60})
    assert changed.status_code == 200, changed.text
    after = before | {"time_zone": "Asia/Hong_Kong", "unit_minutes": 60}
    assert changed.json()["policy"] == after
    assert (await api.get(f"/v1/communities/{community.slug}", api.admin_token)).json()["policy"] == after
    # An empty change changes nothing; it is still recorded as asked.
    same = await api.patch(path, api.admin_token, {})
    assert same.status_code == 200, same.text
    assert same.json()["policy"] == after
    assert await policy_events(owner, community.id) == [
        {"before": before, "after": after},
        {"before": after, "after": after},
    ]
    # Null is no value for any of these fields, and unknown fields are refused.
    for body, field in (({"unit_minutes": None}, "$.unit_minutes"), ({"colour": "red"}, "$.colour")):
        assert fields_of(problem(await api.patch(path, api.admin_token, body), 400, "invalid_request")) == [field]
    assert (await api.get(f"/v1/communities/{community.slug}", api.admin_token)).json()["policy"] == after


@pytest.mark.parametrize(
    ("time_zone", "status", "code"),
    [
        # Names of the documented shape that no time zone database has: a rule the schema cannot state.
        ("Mars/Olympus_Mons", 422, "unknown_time_zone"),
        ("asia/shanghai", 422, "unknown_time_zone"),
        ("UTC+8", 422, "unknown_time_zone"),
        ("CST", 422, "unknown_time_zone"),
        # Not of the documented shape at all.
        ("Asia//Shanghai", 400, "invalid_request"),
        ("", 400, "invalid_request"),
    ],
)
async def test_unknown_time_zones_are_refused_naming_the_field(
    api: Api, time_zone: str, status: int, code: str
) -> None:
    community = await api.community()
    path = f"/v1/communities/{community.slug}/policy"
    for method, body, field in (
        (api.put, WHOLE | {"time_zone": time_zone}, "$.time_zone"),
        (api.patch, {"time_zone": time_zone}, "$.time_zone"),
    ):
        assert fields_of(problem(await method(path, api.admin_token, body), status, code)) == [field]
    slug = "c-" + uuid.uuid4().hex[:12]
    created = await api.post(
        "/v1/communities", api.admin_token, {"slug": slug, "name": "x", "policy": {"time_zone": time_zone}}, key=None
    )
    assert fields_of(problem(created, status, code)) == ["$.policy.time_zone"]
    assert (await api.get(f"/v1/communities/{slug}", api.admin_token)).status_code == 404
    assert (await api.get(f"/v1/communities/{community.slug}", api.admin_token)).json()["policy"] == DEFAULTS


@pytest.mark.parametrize("time_zone", ["UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT-8"])
async def test_iana_names_are_accepted(api: Api, time_zone: str) -> None:
    community = await api.community()
    changed = await api.patch(f"/v1/communities/{community.slug}/policy", api.admin_token, {"time_zone": time_zone})
    assert changed.status_code == 200, changed.text
    assert changed.json()["policy"]["time_zone"] == time_zone


# Kiritimati (UTC+14) and Pago Pago (UTC-11) are 25 hours apart: they never share a date, and at every
# moment at least one of them has another date than UTC, so a check made in UTC would fail one of them.
ZONES = ["Pacific/Kiritimati", "Pacific/Pago_Pago", "Asia/Shanghai"]


@pytest.mark.parametrize("time_zone", ZONES)
async def test_a_service_date_after_today_in_the_community_is_refused(api: Api, time_zone: str) -> None:
    community = await api.community(time_zone=time_zone)
    volunteer = await api.member(community, "volunteer")
    today = datetime.now(ZoneInfo(time_zone)).date()
    credit = {"member_id": volunteer.id, "minutes": 15, "description": "助洁"}
    accepted = await api.post("/v1/credits", api.admin_token, credit | {"service_date": today.isoformat()})
    if accepted.status_code == 422:  # midnight passed in that zone between the two lines above
        today = datetime.now(ZoneInfo(time_zone)).date()
        accepted = await api.post("/v1/credits", api.admin_token, credit | {"service_date": today.isoformat()})
    assert accepted.status_code == 201, accepted.text
    tomorrow = (today + timedelta(days=1)).isoformat()
    key = uuid.uuid4().hex
    refused = await api.post("/v1/credits", api.admin_token, credit | {"service_date": tomorrow}, key=key)
    body = problem(refused, 422, "service_date_in_future")
    assert fields_of(body) == ["$.service_date"]
    assert tomorrow in body["detail"]
    assert time_zone in body["detail"]
    # Remembered like every business rule: the retry answers the same.
    again = await api.post("/v1/credits", api.admin_token, credit | {"service_date": tomorrow}, key=key)
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json() == body
    assert await api.balance(volunteer.account_id) == 15


async def test_the_community_time_zone_decides_today(api: Api) -> None:
    """The same date, at the same moment, is today in one community and tomorrow in another."""
    utc_now = datetime.now(UTC)
    east, west = ZoneInfo("Pacific/Kiritimati"), ZoneInfo("Pacific/Pago_Pago")
    east_today = utc_now.astimezone(east).date()
    assert east_today > utc_now.astimezone(west).date()
    answers = {}
    for zone in (east, west):
        community = await api.community(time_zone=str(zone))
        volunteer = await api.member(community, "volunteer")
        response = await api.post(
            "/v1/credits",
            api.admin_token,
            {"member_id": volunteer.id, "minutes": 15, "service_date": east_today.isoformat()},
        )
        answers[str(zone)] = response.status_code
    assert answers == {"Pacific/Kiritimati": 201, "Pacific/Pago_Pago": 422}


async def test_a_service_date_check_follows_a_time_zone_change(api: Api) -> None:
    community = await api.community(time_zone="Pacific/Kiritimati")
    volunteer = await api.member(community, "volunteer")
    far_east_today = datetime.now(ZoneInfo("Pacific/Kiritimati")).date()
    body = {"member_id": volunteer.id, "minutes": 15, "service_date": far_east_today.isoformat()}
    assert (await api.post("/v1/credits", api.admin_token, body)).status_code == 201
    changed = await api.patch(
        f"/v1/communities/{community.slug}/policy", api.admin_token, {"time_zone": "Pacific/Pago_Pago"}
    )
    assert changed.status_code == 200
    problem(await api.post("/v1/credits", api.admin_token, body), 422, "service_date_in_future")


def _days_ago(days: int) -> date:
    return datetime.now(UTC).date() - timedelta(days=days)


async def test_past_service_dates_are_still_taken(api: Api) -> None:
    community = await api.community()
    volunteer = await api.member(community, "volunteer")
    for day in (_days_ago(1), _days_ago(400), date(1900, 1, 1)):
        response = await api.post(
            "/v1/credits", api.admin_token, {"member_id": volunteer.id, "minutes": 15, "service_date": day.isoformat()}
        )
        assert response.status_code == 201, (day, response.text)
