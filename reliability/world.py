"""The communities, members and tokens a workload plays with, made through the API.

Three communities with different policies (units of 15, 10 and 30 minutes; one allows an
overdraft; caps low enough to be hit), each with a coordinator, volunteers, volunteers who are
also residents, and residents. Volunteers start with credited hours and the pool with a donation;
those setup writes are operations of the history like any other.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import httpx

from reliability.history import OK, Op
from reliability.runner import Runner

SERVICE_DATE = "2026-11-01"
# Every community is made with this service type (sql/migrations/0007_service_requests.sql).
SERVICE_TYPE = "meals"
# How many recent transactions and holds each community remembers as targets for later operations.
TARGETS_KEPT = 300


@dataclass(frozen=True)
class Policy:
    unit_minutes: int
    max_transaction_minutes: int
    max_balance_minutes: int
    overdraft_minutes: int

    def as_json(self) -> dict[str, int]:
        return {
            "unit_minutes": self.unit_minutes,
            "max_transaction_minutes": self.max_transaction_minutes,
            "max_balance_minutes": self.max_balance_minutes,
            "overdraft_minutes": self.overdraft_minutes,
        }


@dataclass(frozen=True, kw_only=True)
class Actor:
    """Whoever sends a request: a label for the history, a token for the header."""

    label: str
    token: str = field(repr=False)


@dataclass(frozen=True, kw_only=True)
class Member(Actor):
    id: str
    account_id: str
    roles: tuple[str, ...]


@dataclass(frozen=True)
class HoldTarget:
    id: str
    minutes: int
    account_id: str
    member_id: str
    expires_soon: bool = False


@dataclass(frozen=True)
class TransactionTarget:
    id: str
    postings: dict[str, int]


@dataclass
class RequestTarget:
    """A service request as a client last learnt it; its status may be stale by the time it is used."""

    id: str
    member_id: str
    funding: str
    minutes: int
    status: str
    provider_member_id: str | None = None


@dataclass
class Community:
    slug: str
    id: str
    policy: Policy
    accounts: dict[str, str]
    coordinator: Member
    members: list[Member]
    # What the clients have learnt so far; which entry a client picks depends on timing.
    transactions: deque[TransactionTarget] = field(default_factory=lambda: deque(maxlen=TARGETS_KEPT))
    reversals: deque[TransactionTarget] = field(default_factory=lambda: deque(maxlen=TARGETS_KEPT))
    holds: deque[HoldTarget] = field(default_factory=lambda: deque(maxlen=TARGETS_KEPT))
    # Service requests not yet completed or cancelled, by id, oldest first.
    requests: dict[str, RequestTarget] = field(default_factory=dict)

    @property
    def volunteers(self) -> list[Member]:
        return [m for m in self.members if "volunteer" in m.roles]

    @property
    def residents(self) -> list[Member]:
        return [m for m in self.members if "resident" in m.roles]

    def member(self, member_id: str | None) -> Member | None:
        return next((m for m in self.members if m.id == member_id), None)

    @property
    def residents_only(self) -> list[Member]:
        return [m for m in self.members if "volunteer" not in m.roles]

    def floor_of(self, account_id: str) -> int | None:
        if account_id == self.accounts["pool"]:
            return 0
        if any(m.account_id == account_id for m in self.all_members):
            return -self.policy.overdraft_minutes
        return None

    def cap_of(self, account_id: str) -> int | None:
        if any(m.account_id == account_id for m in self.all_members):
            return self.policy.max_balance_minutes
        return None

    @property
    def all_members(self) -> list[Member]:
        return [self.coordinator, *self.members]


@dataclass
class World:
    admin: Actor
    communities: list[Community]


# slug, policy, (label, roles) of the members besides the coordinator.
LAYOUT: tuple[tuple[str, Policy], ...] = (
    ("rel-a", Policy(unit_minutes=15, max_transaction_minutes=240, max_balance_minutes=1200, overdraft_minutes=0)),
    ("rel-b", Policy(unit_minutes=10, max_transaction_minutes=300, max_balance_minutes=2400, overdraft_minutes=120)),
    ("rel-c", Policy(unit_minutes=30, max_transaction_minutes=480, max_balance_minutes=1800, overdraft_minutes=0)),
)
MEMBER_ROLES: tuple[tuple[str, ...], ...] = (
    ("volunteer",),
    ("volunteer",),
    ("volunteer",),
    ("volunteer", "resident"),
    ("volunteer", "resident"),
    ("resident",),
    ("resident",),
    ("resident",),
)


async def _created(http: httpx.AsyncClient, path: str, token: str, body: dict[str, Any] | None) -> dict[str, Any]:
    response = await http.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
    if response.status_code != 201:
        raise RuntimeError(f"setup: POST {path} answered {response.status_code}: {response.text}")
    data: dict[str, Any] = response.json()
    return data


async def _member(http: httpx.AsyncClient, admin: str, slug: str, label: str, roles: tuple[str, ...]) -> Member:
    body = {"display_name": label, "roles": list(roles), "grid": "1"}
    data = await _created(http, f"/v1/communities/{slug}/members", admin, body)
    token = await _created(http, f"/v1/members/{data['id']}/tokens", admin, None)
    return Member(id=data["id"], account_id=data["account_id"], token=token["token"], roles=roles, label=label)


async def _setup_write(runner: Runner, http: httpx.AsyncClient, op: Op) -> dict[str, Any]:
    attempt = await runner.attempt(http, runner.register(op), "run")
    if attempt.outcome != OK:
        raise RuntimeError(f"setup: {op.kind} answered {attempt.status}: {attempt.body}")
    body: dict[str, Any] = attempt.body
    return body


async def build_world(runner: Runner, admin_token: str) -> World:
    """Create the communities and members, credit the volunteers and donate to each pool."""
    communities: list[Community] = []
    count = 0
    async with runner.client() as http:
        for slug, policy in LAYOUT:
            created = await _created(
                http, "/v1/communities", admin_token, {"slug": slug, "name": slug, "policy": policy.as_json()}
            )
            coordinator = await _member(http, admin_token, slug, f"{slug}.coordinator", ("coordinator",))
            members = [
                await _member(http, admin_token, slug, f"{slug}.m{i}", roles) for i, roles in enumerate(MEMBER_ROLES)
            ]
            community = Community(slug, created["id"], policy, created["accounts"], coordinator, members)
            communities.append(community)
            unit = policy.unit_minutes
            # Each volunteer starts near 40% of the cap, credited in amounts the policy allows.
            for member in community.volunteers:
                remaining = (policy.max_balance_minutes * 2 // 5) // unit * unit
                while remaining > 0:
                    minutes = min(remaining, policy.max_transaction_minutes // unit * unit)
                    remaining -= minutes
                    count += 1
                    op = credit_op(f"s.{count}", "s", community, community.coordinator, member, minutes)
                    body = await _setup_write(runner, http, op)
                    community.transactions.append(TransactionTarget(body["id"], postings_of(body)))
            donor = community.volunteers[0]
            minutes = policy.max_transaction_minutes // unit * unit
            count += 1
            op = transfer_op(f"s.{count}", "s", community, donor, donor, None, minutes)
            body = await _setup_write(runner, http, op)
            community.transactions.append(TransactionTarget(body["id"], postings_of(body)))
    return World(Actor(label="admin", token=admin_token), communities)


def postings_of(body: Any) -> dict[str, int]:
    """A transaction body's postings as {account_id: minutes}."""
    result: dict[str, int] = {}
    for posting in body.get("postings") or []:
        result[posting["account_id"]] = result.get(posting["account_id"], 0) + posting["minutes"]
    return result


def key_for(op_id: str) -> str:
    return "rel-key-" + op_id


def credit_op(op_id: str, client: str, community: Community, actor: Actor, member: Member, minutes: int) -> Op:
    """Staff credit a volunteer's served hours: issuance -> member."""
    return Op(
        op_id=op_id,
        client=client,
        kind="credit",
        community=community.slug,
        actor=actor.label,
        method="POST",
        path="/v1/credits",
        key=key_for(op_id),
        body={"member_id": member.id, "minutes": minutes, "service_date": SERVICE_DATE, "description": "served"},
        expect={"postings": {community.accounts["issuance"]: -minutes, member.account_id: minutes}},
        token=actor.token,
    )


def transfer_op(
    op_id: str, client: str, community: Community, actor: Actor, sender: Member, to: Member | None, minutes: int
) -> Op:
    """A gift to another member, or (to None) a donation to the pool."""
    body: dict[str, Any] = {"from_member_id": sender.id, "minutes": minutes, "description": "gift"}
    if to is None:
        body["to_pool"] = True
        target = community.accounts["pool"]
    else:
        body["to_member_id"] = to.id
        target = to.account_id
    return Op(
        op_id=op_id,
        client=client,
        kind="donation" if to is None else "gift",
        community=community.slug,
        actor=actor.label,
        method="POST",
        path="/v1/transfers",
        key=key_for(op_id),
        body=body,
        expect={"postings": {sender.account_id: -minutes, target: minutes}},
        token=actor.token,
    )
