"""The monthly report (API.md "Reports", DOMAIN.md rule 10), from the outside.

History is made through the API, then each transaction is moved to a chosen moment of a past month
by a superuser (tests only: the service never writes created_at) in the order it was made, so every
account's postings stay in time order. Every figure is then checked twice: against numbers worked out
by hand, and against a recomputation in Python from the raw rows of transactions and postings.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import secrets
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from tests.client import Api, Community, Member
from tests.services.support import age_request, asked, stepped, transactions_of
from tests.services.support import reported as reported_service

BEIJING = ZoneInfo("Asia/Shanghai")
MINUTE_FIGURES = (
    "earned_minutes",
    "redeemed_minutes",
    "gifted_minutes",
    "donated_minutes",
    "granted_minutes",
    "reversed_minutes",
)
PATH = "/v1/communities/{slug}/reports/monthly"


def beijing(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BEIJING)


async def created(response: Any) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def move(owner: asyncpg.Connection, transaction_id: str, moment: datetime) -> None:
    """Put a transaction (and its postings) at `moment`, as if it had been made then."""
    async with owner.transaction():
        await owner.execute("set local session_replication_role = replica")
        await owner.execute("update transactions set created_at = $2 where id = $1", uuid.UUID(transaction_id), moment)
        await owner.execute(
            "update postings set created_at = $2 where transaction_id = $1", uuid.UUID(transaction_id), moment
        )


async def members_since(owner: asyncpg.Connection, community: Community, moment: datetime) -> None:
    async with owner.transaction():
        await owner.execute("set local session_replication_role = replica")
        await owner.execute(
            "update members set created_at = $2 where community_id = $1", uuid.UUID(community.id), moment
        )


async def report(api: Api, slug: str, token: str | None = None, **params: Any) -> dict[str, Any]:
    response = await api.get(PATH.format(slug=slug), token or api.admin_token, **params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    return body


# --- An independent recomputation from the raw rows ------------------------------------------------


def classify(kind: str, original: str | None, minutes: int) -> str | None:
    """The figure a posting on a member's account counts in, if any."""
    incoming = minutes > 0
    if kind == "reversal":
        # The member the original was about: credited or granted, else the one who paid or gave.
        about = not incoming if original in ("credit", "pool_grant") else incoming
        return "reversed_minutes" if about else None
    if kind in ("redemption", "hold_capture"):
        return "earned_minutes" if incoming else "redeemed_minutes"
    figure = {
        ("credit", True): "earned_minutes",
        ("transfer", False): "gifted_minutes",
        ("donation", False): "donated_minutes",
        ("pool_grant", True): "granted_minutes",
    }
    return figure.get((kind, incoming))


@dataclass
class Tally:
    """One member's (or a grid's, or the total's) figures, summed in Python."""

    minutes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MINUTE_FIGURES, 0))
    active_volunteers: int = 0
    services_completed: int = 0
    people_served: int = 0
    ratings: list[int] = field(default_factory=list)
    outstanding_minutes: int = 0

    def add(self, other: Tally) -> None:
        for name in MINUTE_FIGURES:
            self.minutes[name] += other.minutes[name]
        self.active_volunteers += 1 if other.minutes["earned_minutes"] > 0 else 0
        self.services_completed += other.services_completed
        self.people_served += 1 if other.services_completed > 0 else 0
        self.ratings += other.ratings

    def figures(self) -> dict[str, Any]:
        mean = None
        if self.ratings:
            exact = Decimal(sum(self.ratings)) / Decimal(len(self.ratings))
            mean = float(exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
        return self.minutes | {
            "active_volunteers": self.active_volunteers,
            "services_completed": self.services_completed,
            "people_served": self.people_served,
            "average_rating": mean,
            "outstanding_minutes": self.outstanding_minutes,
        }


def count_service(
    per_member: dict[uuid.UUID, Tally],
    request: asyncpg.Record | None,
    undone: asyncpg.Record | None,
    postings: list[asyncpg.Record],
) -> None:
    """A transaction of the month that completes `request`, or reverses the one that completed `undone`."""
    amount = sum(p["minutes"] for p in postings if p["minutes"] > 0)
    if request is not None:  # completed in the month, counted for the member served
        served = per_member[request["member_id"]]
        served.services_completed += 1
        served.ratings += [request["rating"]] if request["rating"] is not None else []
        if request["funding"] == "pool":  # the pool paid: minutes spent on a service for the member served
            served.minutes["redeemed_minutes"] += amount
    if undone is not None and undone["funding"] == "pool":  # no member paid: the reversal is the served's
        per_member[undone["member_id"]].minutes["reversed_minutes"] += amount


async def recompute(
    owner: asyncpg.Connection, community_ids: list[str], start: datetime, end: datetime
) -> dict[tuple[str, str | None] | None, dict[str, Any]]:
    """Figures per (community slug, grid) and in total (key None), from every posting, in Python."""
    ids = [uuid.UUID(i) for i in community_ids]
    transactions = {
        r["id"]: r
        for r in await owner.fetch(
            "select id, kind, reverses, created_at, service_request_id from transactions where community_id = any($1)",
            ids,
        )
    }
    postings = await owner.fetch(
        "select p.transaction_id, p.account_id, p.minutes, p.created_at from postings p"
        " join accounts a on a.id = p.account_id where a.community_id = any($1)",
        ids,
    )
    accounts = {r["id"]: r for r in await owner.fetch("select * from accounts where community_id = any($1)", ids)}
    members = {
        r["id"]: r
        for r in await owner.fetch(
            "select m.id, m.grid, m.created_at, c.slug from members m join communities c on c.id = m.community_id"
            " where m.community_id = any($1)",
            ids,
        )
    }
    requests = {
        r["id"]: r for r in await owner.fetch("select * from service_requests where community_id = any($1)", ids)
    }
    by_tx: dict[uuid.UUID, list[asyncpg.Record]] = defaultdict(list)
    for p in postings:
        by_tx[p["transaction_id"]].append(p)

    per_member: dict[uuid.UUID, Tally] = defaultdict(Tally)
    issuance = 0
    for p in postings:
        account = accounts[p["account_id"]]
        if p["created_at"] < end:
            if account["kind"] == "issuance":
                issuance += p["minutes"]
            elif account["kind"] == "member":
                per_member[account["member_id"]].outstanding_minutes += p["minutes"]
    for tx_id, tx in transactions.items():
        if not start <= tx["created_at"] < end:
            continue
        original = transactions[tx["reverses"]]["kind"] if tx["reverses"] else None
        for p in by_tx[tx_id]:
            member = accounts[p["account_id"]]["member_id"]
            figure = classify(tx["kind"], original, p["minutes"])
            if member is not None and figure is not None:
                per_member[member].minutes[figure] += abs(p["minutes"])
        undone = transactions[tx["reverses"]]["service_request_id"] if tx["reverses"] else None
        count_service(per_member, requests.get(tx["service_request_id"]), requests.get(undone), by_tx[tx_id])
    grids: dict[tuple[str, str | None], Tally] = {}
    total = Tally()
    for member_id, member in members.items():
        if member["created_at"] >= end:
            continue
        grid = grids.setdefault((member["slug"], member["grid"]), Tally())
        grid.add(per_member[member_id])
        grid.outstanding_minutes += per_member[member_id].outstanding_minutes
        total.add(per_member[member_id])
    total.outstanding_minutes = -issuance
    result: dict[tuple[str, str | None] | None, dict[str, Any]] = {k: g.figures() for k, g in grids.items()}
    result[None] = total.figures()
    return result


FIGURES = (*MINUTE_FIGURES, "active_volunteers", "services_completed", "people_served", "average_rating")


def reported(body: dict[str, Any], names: tuple[str, ...] = (*FIGURES, "outstanding_minutes")) -> dict[Any, Any]:
    """The report's figures by (community, grid), and the totals under None."""
    rows: dict[Any, Any] = {(g["community"], g["grid"]): {n: g[n] for n in names} for g in body["by_grid"]}
    rows[None] = {n: body["totals"][n] for n in names}
    return rows


def ledger(rows: dict[Any, Any]) -> dict[Any, Any]:
    """Only the ledger figures of reported() or recompute() rows (for hand counts of those)."""
    keep = (*MINUTE_FIGURES, "active_volunteers", "outstanding_minutes")
    return {key: {n: row[n] for n in keep} for key, row in rows.items()}


# --- Known data ---------------------------------------------------------------------------------------


async def without_grid(api: Api, community: Community, *roles: str, name: str) -> Member:
    """A member with no grid (Api.member always gives one)."""
    response = await api.post(
        f"/v1/communities/{community.slug}/members",
        api.admin_token,
        {"display_name": name, "roles": list(roles), "grid": None},
        key=None,
    )
    data = await created(response)
    token = await created(await api.post(f"/v1/members/{data['id']}/tokens", api.admin_token, key=None))
    return Member(id=data["id"], account_id=data["account_id"], token=token["token"], community=community.slug)


@dataclass
class Town:
    community: Community
    coordinator: Member
    auditor: Member
    v1: Member
    v2: Member
    v3: Member
    r1: Member
    r2: Member


async def october(api: Api, owner: asyncpg.Connection, **policy: Any) -> Town:
    """A community with a month of every kind of movement, in October 2026 Beijing time."""
    community = await api.community(**policy)
    town = Town(
        community=community,
        coordinator=await api.member(community, "coordinator", grid="1"),
        auditor=await api.member(community, "auditor", grid="1"),
        v1=await api.member(community, "volunteer", grid="1", name="周彦芳"),
        v2=await api.member(community, "volunteer", "resident", grid="1", name="李桂兰"),
        v3=await api.member(community, "volunteer", grid="三网格", name="王建国"),
        r1=await api.member(community, "resident", grid="三网格", name="陈秀英"),
        r2=await without_grid(api, community, "resident", "volunteer", name="赵德明"),
    )
    await members_since(owner, community, beijing("2026-01-01T00:00:00"))
    admin = api.admin_token
    v1, v2, v3, r1, r2 = town.v1, town.v2, town.v3, town.r1, town.r2

    def credit(member: Member, minutes: int) -> dict[str, Any]:
        return {"member_id": member.id, "minutes": minutes, "service_date": "2026-09-01", "description": "服务"}

    history: list[tuple[str, str]] = []

    async def post(path: str, body: dict[str, Any], at: str) -> dict[str, Any]:
        answer = await created(await api.post(path, admin, body))
        history.append((answer["id"], at))
        return answer

    await post("/v1/credits", credit(v1, 600), "2026-09-15T10:00:00")
    await post("/v1/credits", credit(v2, 120), "2026-10-01T00:00:00")  # the month's first instant
    await post("/v1/credits", credit(v3, 240), "2026-10-05T09:00:00")
    await post("/v1/transfers", {"from_member_id": v1.id, "to_member_id": r1.id, "minutes": 60}, "2026-10-06T09:00:00")
    await post("/v1/transfers", {"from_member_id": v2.id, "to_pool": True, "minutes": 60}, "2026-10-07T09:00:00")
    await post("/v1/pool-grants", {"member_id": r1.id, "minutes": 30}, "2026-10-08T09:00:00")
    await post("/v1/redemptions", {"member_id": r1.id, "minutes": 30}, "2026-10-09T09:00:00")
    await post(
        "/v1/redemptions", {"member_id": r1.id, "minutes": 15, "provider_member_id": v3.id}, "2026-10-10T09:00:00"
    )
    hold = await created(await api.post("/v1/holds", admin, {"member_id": v1.id, "minutes": 60}))
    capture = await created(
        await api.post(f"/v1/holds/{hold['id']}/capture", admin, {"minutes": 45, "provider_member_id": r2.id})
    )
    history.append((capture["id"], "2026-10-11T09:00:00"))
    mistake = await post("/v1/credits", credit(r2, 60), "2026-10-12T09:00:00")
    await post(f"/v1/transactions/{mistake['id']}/reversal", {"reason": "记错了"}, "2026-10-13T09:00:00")
    gift = await post(
        "/v1/transfers", {"from_member_id": v1.id, "to_member_id": v2.id, "minutes": 15}, "2026-10-14T09:00:00"
    )
    await post(f"/v1/transactions/{gift['id']}/reversal", {"reason": "退回"}, "2026-10-15T09:00:00")
    await post("/v1/credits", credit(v1, 15), "2026-10-31T23:59:00")  # the month's last minute
    await post("/v1/credits", credit(v3, 30), "2026-11-01T00:00:00")  # the next month's first instant
    for transaction_id, at in history:
        await move(owner, transaction_id, beijing(at))
    return town


def figures(*values: int) -> dict[str, int]:
    """earned, redeemed, gifted, donated, granted, reversed, active volunteers, outstanding."""
    return dict(zip((*MINUTE_FIGURES, "active_volunteers", "outstanding_minutes"), values, strict=True))


async def test_every_figure_matches_the_hand_count_and_a_recomputation_from_the_postings(
    api: Api, owner: asyncpg.Connection
) -> None:
    town = await october(api, owner)
    slug = town.community.slug
    body = await report(api, slug, month="2026-10")
    assert body["community"] == slug
    assert body["month"] == "2026-10"
    assert datetime.fromisoformat(body["from"]) == beijing("2026-10-01T00:00:00")
    assert datetime.fromisoformat(body["to"]) == beijing("2026-11-01T00:00:00")
    assert body["from"].endswith("+08:00"), body["from"]
    assert body["include_children"] is False
    assert body["communities"] == [slug]

    # By hand (see october()): the September credit only counts as outstanding; the November one not at all.
    assert ledger(reported(body)) == {
        # Grid 1: v2 credited 120, v1 15 at 23:59 on the 31st; v1 paid 45 by a hold and gave 60 + 15
        # (the 15 reversed); v2 donated 60. Balances: v1 510, v2 60, the coordinator and auditor 0.
        (slug, "1"): figures(135, 45, 75, 60, 0, 15, 2, 570),
        # Grid 三网格: v3 credited 240 and paid 15 by r1; r1 granted 30, redeemed 30 + 15. v3 255, r1 45.
        (slug, "三网格"): figures(255, 45, 0, 0, 30, 0, 1, 300),
        # No grid: r2 credited 60 (reversed) and paid 45 for the hold's service.
        (slug, None): figures(105, 0, 0, 0, 0, 60, 1, 45),
        # Outstanding: minus the issuance balance (600 + 120 + 240 + 60 - 60 + 15), that is the members'
        # 915 plus the pool's 30 and the services account's 30.
        None: figures(495, 90, 75, 60, 30, 75, 4, 975),
    }
    assert [g["grid"] for g in body["by_grid"]] == ["1", "三网格", None]
    assert reported(body) == await recompute(
        owner, [town.community.id], beijing("2026-10-01T00:00:00"), beijing("2026-11-01T00:00:00")
    )
    # Service figures: none of this month's movements came from a service request.
    for row in [body["totals"], *body["by_grid"]]:
        assert (row["services_completed"], row["people_served"], row["average_rating"]) == (0, 0, None)
    # Every service type of the community is listed, done or not, the six of API.md in its order.
    assert [(t["service_type"], t["name"], t["services_completed"], t["minutes"], t["average_rating"])
            for t in body["by_service_type"]] == [
        ("meals", "助餐", 0, 0, None), ("cleaning", "助洁", 0, 0, None), ("bathing", "助浴", 0, 0, None),
        ("medical_escort", "助医", 0, 0, None), ("companionship", "陪聊", 0, 0, None), ("errands", "代办", 0, 0, None),
    ]  # fmt: skip


async def test_the_months_around_match_the_recomputation_too(api: Api, owner: asyncpg.Connection) -> None:
    town = await october(api, owner)
    for month, start, end in (
        ("2026-09", "2026-09-01T00:00:00", "2026-10-01T00:00:00"),
        ("2026-11", "2026-11-01T00:00:00", "2026-12-01T00:00:00"),
        ("2026-08", "2026-08-01T00:00:00", "2026-09-01T00:00:00"),
    ):
        body = await report(api, town.community.slug, month=month)
        expected = await recompute(owner, [town.community.id], beijing(start), beijing(end))
        assert reported(body) == expected, month
    september = await report(api, town.community.slug, month="2026-09")
    assert september["totals"]["earned_minutes"] == 600
    assert september["totals"]["outstanding_minutes"] == 600
    november = await report(api, town.community.slug, month="2026-11")
    assert november["totals"]["earned_minutes"] == 30
    assert november["totals"]["outstanding_minutes"] == 1005
    # Before any member existed the community had no grids.
    assert (await report(api, town.community.slug, month="2025-12"))["by_grid"] == []


@pytest.mark.parametrize(
    ("zone", "october_earned", "november_earned"),
    [
        # Beijing: 23:59 on 31 October is October, midnight that follows is November.
        ("Asia/Shanghai", 15, 30),
        # 23:59 on 31 October in Beijing is 15:59 UTC: October in UTC as well.
        # 00:00 on 1 November in Beijing is 16:00 on 31 October UTC: still October in UTC.
        ("UTC", 15 + 30, 0),
        # ... and in Kiritimati (UTC+14) both are in November.
        ("Pacific/Kiritimati", 0, 15 + 30),
    ],
)
async def test_months_are_bounded_in_the_communitys_time_zone(
    api: Api, owner: asyncpg.Connection, zone: str, october_earned: int, november_earned: int
) -> None:
    community = await api.community(time_zone=zone)
    volunteer = await api.member(community, "volunteer")
    await members_since(owner, community, beijing("2026-01-01T00:00:00"))
    for minutes, at in ((15, "2026-10-31T23:59:00"), (30, "2026-11-01T00:00:00")):
        answer = await created(await api.credit(volunteer, minutes))
        await move(owner, answer["id"], beijing(at))
    october_report = await report(api, community.slug, month="2026-10")
    november_report = await report(api, community.slug, month="2026-11")
    # Only the two credits were moved into these months (members' own created_at aside).
    assert october_report["totals"]["earned_minutes"] == october_earned
    assert november_report["totals"]["earned_minutes"] == november_earned
    start = datetime(2026, 10, 1, tzinfo=ZoneInfo(zone))
    assert datetime.fromisoformat(october_report["from"]) == start
    assert datetime.fromisoformat(october_report["from"]).utcoffset() == start.utcoffset()


async def test_include_children_sums_a_streets_communities(api: Api, owner: asyncpg.Connection) -> None:
    street = "s-" + uuid.uuid4().hex[:12]
    response = await api.post("/v1/communities", api.admin_token, {"slug": street, "name": "紫竹街道"}, key=None)
    assert response.status_code == 201, response.text
    towns = []
    for _ in range(2):
        slug = "c-" + uuid.uuid4().hex[:12]
        answer = await api.post(
            "/v1/communities", api.admin_token, {"slug": slug, "name": "社区", "parent_slug": street}, key=None
        )
        assert answer.status_code == 201, answer.text
        community = Community(slug=slug, id=answer.json()["id"], accounts=answer.json()["accounts"])
        volunteer = await api.member(community, "volunteer", grid="1")
        await members_since(owner, community, beijing("2026-01-01T00:00:00"))
        towns.append((community, volunteer))
    for (_, volunteer), minutes in zip(towns, (60, 90), strict=True):
        answer = await created(await api.credit(volunteer, minutes))
        await move(owner, answer["id"], beijing("2026-10-20T12:00:00"))
    street_id = await report(api, street, month="2026-10")
    assert street_id["totals"]["earned_minutes"] == 0
    assert street_id["by_grid"] == []
    assert street_id["communities"] == [street]

    whole = await report(api, street, month="2026-10", include_children="true")
    assert whole["include_children"] is True
    assert whole["communities"] == [street, towns[0][0].slug, towns[1][0].slug]
    assert whole["totals"]["earned_minutes"] == 150
    assert whole["totals"]["active_volunteers"] == 2
    assert whole["totals"]["outstanding_minutes"] == 150
    # Two grids named "1", one per community: two rows, each naming its community.
    assert sorted((g["community"], g["grid"], g["earned_minutes"]) for g in whole["by_grid"]) == sorted(
        [(towns[0][0].slug, "1", 60), (towns[1][0].slug, "1", 90)]
    )
    ids = [(await api.get(f"/v1/communities/{s}", api.admin_token)).json()["id"] for s in whole["communities"]]
    start, end = beijing("2026-10-01T00:00:00"), beijing("2026-11-01T00:00:00")
    assert reported(whole) == await recompute(owner, ids, start, end)
    # A child's own report is only its own.
    child = await report(api, towns[1][0].slug, month="2026-10", include_children="true")
    assert child["communities"] == [towns[1][0].slug]
    assert child["totals"]["earned_minutes"] == 90


# --- CSV ------------------------------------------------------------------------------------------


async def test_csv_is_the_same_report_for_excel_with_chinese_intact(api: Api, owner: asyncpg.Connection) -> None:
    town = await october(api, owner)
    slug = town.community.slug
    body = await report(api, slug, month="2026-10")
    response = await api.client.get(
        PATH.format(slug=slug),
        params={"month": "2026-10"},
        headers={"Authorization": f"Bearer {town.coordinator.token}", "Accept": "text/csv"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == f'attachment; filename="report-{slug}-2026-10.csv"'
    assert response.headers["content-language"] == "en"
    raw = response.content
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM that makes Excel read UTF-8
    text = raw.decode("utf-8-sig")
    assert "\r\n" in text
    rows = list(csv.reader(io.StringIO(text)))
    header, *grids, total = rows
    assert header == [
        "community", "grid", "month", *MINUTE_FIGURES, "active_volunteers", "people_served",
        "services_completed", "average_rating", "outstanding_minutes",
    ]  # fmt: skip
    assert len(grids) == len(body["by_grid"]) == 3
    assert [r[1] for r in grids] == ["1", "三网格", ""]
    for row, expected in zip(grids, body["by_grid"], strict=True):
        assert row[0] == slug
        assert row[2] == "2026-10"
        assert [int(v) for v in row[3:12]] == [expected[n] for n in header[3:12]]
        assert row[12] == ""  # no rating
        assert int(row[13]) == expected["outstanding_minutes"]
    assert total[:3] == [slug, "total", "2026-10"]
    assert [int(v) for v in total[3:12]] == [body["totals"][n] for n in header[3:12]]
    assert int(total[13]) == body["totals"]["outstanding_minutes"] == 975


async def test_csv_headers_are_chinese_for_chinese_callers(api: Api, owner: asyncpg.Connection) -> None:
    town = await october(api, owner)
    response = await api.client.get(
        PATH.format(slug=town.community.slug),
        params={"month": "2026-10"},
        headers={
            "Authorization": f"Bearer {town.auditor.token}",
            "Accept": "text/csv, application/json;q=0.5",
            "Accept-Language": "zh-CN,zh;q=0.9",
        },
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-language"] == "zh-CN"
    header, *_, total = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert header[:4] == ["社区", "网格", "月份", "获得时长（分钟）"]
    assert header[-1] == "未兑付时长（分钟）"
    assert total[1] == "合计"


async def test_a_grid_name_never_runs_as_a_formula_in_excel(api: Api) -> None:
    community = await api.community()
    await api.member(community, "volunteer", grid='=HYPERLINK("http://x")')
    await api.member(community, "volunteer", grid="-1")
    response = await api.client.get(
        PATH.format(slug=community.slug),
        params={"month": datetime.now(BEIJING).strftime("%Y-%m")},
        headers={"Authorization": f"Bearer {api.admin_token}", "Accept": "text/csv"},
    )
    assert response.status_code == 200, response.text
    grids = [row[1] for row in list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))[1:-1]]
    assert sorted(grids) == sorted(['\'=HYPERLINK("http://x")', "'-1"])


async def test_json_unless_csv_is_preferred(api: Api) -> None:
    community = await api.community()
    for accept in (None, "*/*", "application/json", "text/html", "application/json, text/csv;q=0.5", "garbage;;q=x"):
        headers = {"Authorization": f"Bearer {api.admin_token}"} | ({"Accept": accept} if accept else {})
        response = await api.client.get(PATH.format(slug=community.slug), params={"month": "2026-10"}, headers=headers)
        assert response.status_code == 200, (accept, response.text)
        assert response.headers["content-type"].startswith("application/json"), accept
    for accept in ("text/csv", "text/*", "text/csv;q=0.9, application/json;q=0.1"):
        headers = {"Authorization": f"Bearer {api.admin_token}", "Accept": accept}
        response = await api.client.get(PATH.format(slug=community.slug), params={"month": "2026-10"}, headers=headers)
        assert response.headers["content-type"].startswith("text/csv"), accept


# --- Who may read it ------------------------------------------------------------------------------


async def test_who_may_read_a_communitys_report(api: Api, owner: asyncpg.Connection) -> None:
    community = await api.community()
    other = await api.community()
    global_auditor = "tb_test_global_auditor_" + secrets.token_urlsafe(24)
    await owner.fetchval(
        "select create_principal_token('auditor', null, $1, 'test')", hashlib.sha256(global_auditor.encode()).digest()
    )
    callers: dict[str, tuple[str | None, int]] = {
        "admin": (api.admin_token, 200),
        "global auditor": (global_auditor, 200),
        "coordinator": ((await api.member(community, "coordinator")).token, 200),
        "auditor": ((await api.member(community, "auditor")).token, 200),
        "volunteer": ((await api.member(community, "volunteer")).token, 403),
        "resident": ((await api.member(community, "resident")).token, 403),
        "volunteer and resident": ((await api.member(community, "volunteer", "resident")).token, 403),
        "another community's coordinator": ((await api.member(other, "coordinator")).token, 404),
        "another community's auditor": ((await api.member(other, "auditor")).token, 404),
        "another community's volunteer": ((await api.member(other, "volunteer")).token, 404),
        "no token": (None, 401),
        "unknown token": ("tb_" + secrets.token_urlsafe(32), 401),
    }
    for who, (token, status) in callers.items():
        for headers in ({}, {"Accept": "text/csv"}):
            response = await api.client.get(
                PATH.format(slug=community.slug),
                params={"month": "2026-10"},
                headers=api.auth(token) | headers,
            )
            assert response.status_code == status, (who, headers, response.text)
            if status != 200:
                problem = response.json()
                assert response.headers["content-type"].startswith("application/problem+json")
                assert problem["code"] == {401: "unauthenticated", 403: "forbidden", 404: "not_found"}[status]
    # A community that does not exist answers as one outside reach does.
    missing = await api.get(PATH.format(slug="no-such-" + uuid.uuid4().hex[:8]), api.admin_token, month="2026-10")
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
    # Staff of a child community cannot read their street's report, with or without its children.
    street = await api.community()
    child_slug = "c-" + uuid.uuid4().hex[:12]
    made = await api.post(
        "/v1/communities", api.admin_token, {"slug": child_slug, "name": "社区", "parent_slug": street.slug}, key=None
    )
    assert made.status_code == 201, made.text
    child = Community(slug=child_slug, id=made.json()["id"], accounts=made.json()["accounts"])
    child_coordinator = await api.member(child, "coordinator")
    for params in ({"month": "2026-10"}, {"month": "2026-10", "include_children": "true"}):
        refused = await api.get(PATH.format(slug=street.slug), child_coordinator.token, **params)
        assert refused.status_code == 404, refused.text


async def test_a_refusal_is_chinese_for_chinese_callers(api: Api) -> None:
    community = await api.community()
    volunteer = await api.member(community, "volunteer")
    response = await api.client.get(
        PATH.format(slug=community.slug),
        params={"month": "2026-10"},
        headers={"Authorization": f"Bearer {volunteer.token}", "Accept-Language": "zh-CN"},
    )
    assert response.status_code == 403
    assert response.json()["detail"] == "只有协调员和审计员可以查看社区的报表。"


# --- Malformed months -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "month",
    ["2026-13", "2026-1", "2026-00", "0000-01", "0001-01", "1899-12", "3000-01", "2026-11-01", "2026/11", "202611",
     "26-11", "２０２６-１１", "٢٠٢٦-١١", "2026-1 ", " 2026-11", "2026-+1", "", "null", "x" * 5000],
)  # fmt: skip
async def test_a_month_that_is_not_one_is_refused_naming_the_parameter(api: Api, month: str) -> None:
    community = await api.community()
    response = await api.get(PATH.format(slug=community.slug), api.admin_token, month=month)
    assert response.status_code == 400, (month, response.text)
    problem = response.json()
    assert problem["code"] == "invalid_request"
    assert problem["errors"][0]["field"] == "month", problem


async def test_the_month_is_required(api: Api) -> None:
    community = await api.community()
    response = await api.get(PATH.format(slug=community.slug), api.admin_token)
    assert response.status_code == 400, response.text
    assert response.json()["errors"] == [{"field": "month", "message": "required"}]
    chinese = await api.client.get(
        PATH.format(slug=community.slug),
        headers={"Authorization": f"Bearer {api.admin_token}", "Accept-Language": "zh"},
    )
    assert "月份" in chinese.json()["detail"], chinese.text


@pytest.mark.parametrize("value", ["maybe", "2", "null", ""])
async def test_include_children_is_a_boolean(api: Api, value: str) -> None:
    community = await api.community()
    response = await api.get(PATH.format(slug=community.slug), api.admin_token, month="2026-10", include_children=value)
    assert response.status_code == 400, (value, response.text)
    assert response.json()["code"] == "invalid_request"


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "Pacific/Kiritimati", "Pacific/Pago_Pago", "UTC"])
async def test_the_edges_of_the_calendar_are_months_too(api: Api, zone: str) -> None:
    community = await api.community(time_zone=zone)
    for month in ("1900-01", "2999-12", "2026-02", "2028-02"):
        body = await report(api, community.slug, month=month, include_children="true")
        assert body["month"] == month
        start = datetime.fromisoformat(body["from"])
        assert (start.year, start.month, start.day, start.hour) == (int(month[:4]), int(month[5:]), 1, 0)


# --- What the OpenAPI document promises -------------------------------------------------------------


async def test_the_document_declares_both_answers_and_every_problem(api: Api) -> None:
    document = (await api.get("/schema/openapi.json", None)).json()
    operation = document["paths"]["/v1/communities/{slug}/reports/monthly"]["get"]
    assert operation["operationId"] == "monthly_report"
    success = operation["responses"]["200"]
    assert set(success["content"]) == {"application/json", "text/csv"}
    assert success["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/MonthlyReport"}
    assert success["content"]["text/csv"]["schema"]["type"] == "string"
    assert success["content"]["text/csv"]["example"].startswith("\ufeffcommunity,grid,month,")
    codes = {
        status: response["content"]["application/problem+json"]["schema"]["properties"]["code"]["enum"]
        for status, response in operation["responses"].items()
        if status != "200"
    }
    assert codes == {
        "400": ["invalid_request"],
        "401": ["unauthenticated"],
        "403": ["forbidden"],
        "404": ["not_found"],
        "429": ["too_many_requests"],
        "500": ["internal_error"],
        "503": ["unavailable"],
    }
    month = next(p for p in operation["parameters"] if p["name"] == "month")
    assert month["required"] is True
    pattern = month["schema"]["pattern"]
    for good in ("2026-11", "1900-01", "2999-12"):
        assert re.fullmatch(pattern.strip("^$"), good), good
    for bad in ("2026-13", "2026-1", "0000-01", "3000-01", "2026-00"):
        assert not re.fullmatch(pattern.strip("^$"), bad), bad
    report_schema = document["components"]["schemas"]["MonthlyReport"]
    assert {"community", "month", "from", "to", "totals", "by_grid", "by_service_type"} <= set(
        report_schema["required"]
    )


# --- Service figures: from service requests completed in the month ------------------------------------


async def test_service_figures_come_from_the_requests_completed_in_the_month(
    api: Api, owner: asyncpg.Connection
) -> None:
    """Requests of each funding, confirmed with ratings and one by the 7-day job (no rating), over HTTP."""
    community = await api.community()
    slug = community.slug
    coordinator = await api.member(community, "coordinator", grid="1")
    p1 = await api.member(community, "volunteer", grid="1", name="周彦芳")
    p2 = await api.member(community, "volunteer", grid="2", name="王建国")
    e1 = await api.member(community, "resident", grid="1", name="陈秀英")
    e2 = await api.member(community, "resident", grid="2", name="李桂兰")
    e3 = await api.member(community, "resident", grid="2", name="赵德明")
    donor = await api.member(community, "volunteer", grid="3", name="刘芳")
    await members_since(owner, community, beijing("2026-01-01T00:00:00"))
    token = coordinator.token
    history: list[tuple[str, str]] = []

    async def write(path: str, body: dict[str, Any], at: str) -> None:
        history.append(((await created(await api.post(path, token, body)))["id"], at))

    await write(
        "/v1/credits", {"member_id": donor.id, "minutes": 600, "service_date": "2026-09-01"}, "2026-09-20T09:00"
    )
    await write("/v1/transfers", {"from_member_id": donor.id, "to_pool": True, "minutes": 300}, "2026-09-21T09:00")
    await write("/v1/pool-grants", {"member_id": e1.id, "minutes": 120}, "2026-09-22T09:00")
    await write("/v1/pool-grants", {"member_id": e2.id, "minutes": 60}, "2026-09-23T09:00")

    async def service(member: Member, kind: str, minutes: int, funding: str, provider: Member, done: int) -> str:
        request = await asked(api, token, member, minutes, funding, service_type=kind)
        await reported_service(api, request["id"], provider, done)
        return str(request["id"])

    async def confirmed(request_id: str, rating: int, at: str) -> str:
        answer = await stepped(api, request_id, "confirm", token, {"rating": rating})
        history.append((answer["transaction_id"], at))
        return str(answer["transaction_id"])

    # e1's own hours: 助餐 by p1, 60 minutes, 5 stars.
    await confirmed(await service(e1, "meals", 60, "own", p1, 60), 5, "2026-10-03T09:00")
    # Paid by the community: 助洁 for e2 by p2, 90 of the 120 asked, 4 stars.
    await confirmed(await service(e2, "cleaning", 120, "community", p2, 90), 4, "2026-10-04T09:00")
    # Paid by the pool: 助餐 for e3 by p1, 45 of 60, 2 stars; its transaction reversed later that day.
    pooled = await confirmed(await service(e3, "meals", 60, "pool", p1, 45), 2, "2026-10-05T09:00")
    await write(f"/v1/transactions/{pooled}/reversal", {"reason": "记错了"}, "2026-10-05T12:00")
    # e2's own hours: 陪聊 by p2, reported and left: the 7-day job confirms it, without a rating.
    waiting = await service(e2, "companionship", 60, "own", p2, 60)
    await age_request(owner, waiting, reported_days_ago=8)
    assert await owner.fetchval("select auto_confirm_service_requests('test-reports', 1000)") >= 1
    history.append((str((await transactions_of(owner, waiting))[0]["id"]), "2026-10-06T09:00"))
    # Cancelled: never counted.
    cancelled = await asked(api, token, e1, 30, "own", service_type="meals")
    await stepped(api, cancelled["id"], "cancel", token, {"reason": "不需要了"})
    # Completed on 1 November: not October's.
    await confirmed(await service(e1, "meals", 30, "own", p1, 30), 3, "2026-11-02T09:00")
    for transaction_id, at in history:
        await move(owner, transaction_id, beijing(at + ":00"))

    body = await report(api, slug, token, month="2026-10")
    rows = reported(body)
    assert rows[(slug, "1")] == {
        # p1 earned 60 + 45 (the 45 reversed); e1 redeemed 60; one service, for e1, 5 stars; balances
        # e1 60, p1 60.
        **figures(105, 60, 0, 0, 0, 0, 1, 120),
        "services_completed": 1,
        "people_served": 1,
        "average_rating": 5.0,
    }
    assert rows[(slug, "2")] == {
        # p2 earned 90 (credit) + 60; e2 redeemed 60 of its own, and the pool paid 45 for e3's meal,
        # then had it back by the reversal, which is e3's (no member paid).
        **figures(150, 105, 0, 0, 0, 45, 1, 150),
        "services_completed": 3,
        "people_served": 2,
        "average_rating": 3.0,  # (4 + 2) / 2: the job's confirmation has no rating
    }
    assert rows[(slug, "3")] == {**figures(0, 0, 0, 0, 0, 0, 0, 300), "services_completed": 0, "people_served": 0,
                                 "average_rating": None}  # fmt: skip
    # Issued: 600 + 90 (the community's service); the pool keeps 300 - 180 - 45 + 45 = 120.
    assert rows[None] == {
        **figures(255, 165, 0, 0, 0, 45, 2, 690),
        "services_completed": 4,
        "people_served": 3,
        "average_rating": 3.67,  # (5 + 4 + 2) / 3
    }
    assert [(t["service_type"], t["services_completed"], t["minutes"], t["average_rating"])
            for t in body["by_service_type"]] == [
        ("meals", 2, 105, 3.5), ("cleaning", 1, 90, 4.0), ("bathing", 0, 0, None),
        ("medical_escort", 0, 0, None), ("companionship", 1, 60, None), ("errands", 0, 0, None),
    ]  # fmt: skip
    start, end = beijing("2026-10-01T00:00:00"), beijing("2026-11-01T00:00:00")
    assert rows == await recompute(owner, [community.id], start, end)
    assert await recompute_types(owner, [community.id], start, end) == {
        t["service_type"]: (t["services_completed"], t["minutes"], t["average_rating"]) for t in body["by_service_type"]
    }
    november = await report(api, slug, token, month="2026-11")
    assert (november["totals"]["services_completed"], november["totals"]["average_rating"]) == (1, 3.0)
    assert reported(november) == await recompute(owner, [community.id], end, beijing("2026-12-01T00:00:00"))
    # The CSV carries the service figures too.
    response = await api.client.get(
        PATH.format(slug=slug), params={"month": "2026-10"}, headers={**api.auth(token), "Accept": "text/csv"}
    )
    header, *_, total = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    cells = dict(zip(header, total, strict=True))
    assert (cells["people_served"], cells["services_completed"], cells["average_rating"]) == ("3", "4", "3.67")


async def recompute_types(
    owner: asyncpg.Connection, community_ids: list[str], start: datetime, end: datetime
) -> dict[str, tuple[int, int, float | None]]:
    """Per service type, from the raw rows: requests whose transaction was made in the month."""
    rows = await owner.fetch(
        """
        select r.service_type, r.rating, t.id as transaction_id
          from service_requests r join transactions t on t.service_request_id = r.id
         where r.community_id = any($1) and t.created_at >= $2 and t.created_at < $3
        """,
        [uuid.UUID(i) for i in community_ids],
        start,
        end,
    )
    codes = await owner.fetch(
        "select distinct code from service_types where community_id = any($1)", [uuid.UUID(i) for i in community_ids]
    )
    result: dict[str, tuple[int, int, float | None]] = {}
    for code in [c["code"] for c in codes]:
        done = [r for r in rows if r["service_type"] == code]
        minutes = 0
        for r in done:
            minutes += await owner.fetchval(
                "select sum(minutes) from postings where transaction_id = $1 and minutes > 0", r["transaction_id"]
            )
        tally = Tally(ratings=[r["rating"] for r in done if r["rating"] is not None])
        result[code] = (len(done), minutes, tally.figures()["average_rating"])
    return result
