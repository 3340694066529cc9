"""`timebank demo`: a sample community, 紫轩社区, to look at and click through.

Everything is made the way the service makes it: as the service role, through the same SQL
operations the HTTP endpoints call, each hour-moving call with its own Idempotency-Key
(`demo-credit-7`, ...), so the audit trail and the ledger look exactly like real use. The whole
load is one database transaction: a run loads all of it or nothing. A community `zixuan` that
already exists means the demo is loaded; a second run adds nothing and only issues fresh tokens.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

import asyncpg

from timebank.auth.bootstrap import create_principal
from timebank.auth.tokens import new_token
from timebank.config import Settings
from timebank.db import connect_kwargs
from timebank.ledger.verify import Report, verify

# ---------------------------------------------------------------------------------------------
# The sample data. Names refer to members by display name, which is unique within the demo.
# ---------------------------------------------------------------------------------------------

SLUG = "zixuan"
NAME = "紫轩社区"
UNIT_MINUTES = 15
MAX_TRANSACTION_MINUTES = 1440
MAX_BALANCE_MINUTES = 90_000
OVERDRAFT_MINUTES = 0


class Person(NamedTuple):
    name: str
    roles: tuple[str, ...]
    grid: str
    birth_date: date
    phone: str | None  # None: no phone, so the coordinator acts on their behalf.
    note: str


COORDINATOR = "王丽华"
PEOPLE: tuple[Person, ...] = (
    Person(COORDINATOR, ("coordinator",), "1", date(1979, 3, 12), "13912340001", "社区协调员"),
    Person("周彦芳", ("volunteer",), "1", date(1990, 6, 18), "13912340002", ""),
    Person("李明", ("volunteer",), "1", date(1986, 11, 2), "13912340003", ""),
    Person("陈静", ("volunteer",), "1", date(1995, 1, 23), "13912340004", ""),
    Person("张伟", ("volunteer",), "2", date(1988, 9, 30), "13912340005", ""),
    Person("刘洋", ("volunteer",), "2", date(1999, 4, 15), "13912340006", ""),
    Person("赵磊", ("volunteer", "resident"), "2", date(1962, 7, 8), "13912340007", "退休后做志愿者"),
    Person("周桂兰", ("resident",), "1", date(1950, 2, 14), "13912340008", "周彦芳的母亲"),
    Person("李秀英", ("resident",), "1", date(1947, 10, 5), None, "李明的母亲，无手机"),
    Person("张德明", ("resident",), "2", date(1952, 12, 20), "13912340009", "张伟的父亲"),
    Person("孙玉珍", ("resident",), "2", date(1942, 5, 1), None, "84岁独居，无手机"),
)


class Credit(NamedTuple):
    volunteer: str
    minutes: int
    service_date: date
    description: str


# Confirmed services, August to November 2026; key demo-credit-<n> is the n-th row.
CREDITS: tuple[Credit, ...] = (
    Credit("周彦芳", 120, date(2026, 8, 5), "陪同就医（孙玉珍）"),
    Credit("李明", 90, date(2026, 8, 12), "助餐（张德明）"),
    Credit("陈静", 60, date(2026, 8, 19), "聊天陪伴（孙玉珍）"),
    Credit("张伟", 180, date(2026, 8, 26), "打扫卫生（李秀英）"),
    Credit("刘洋", 60, date(2026, 9, 3), "助餐（孙玉珍）"),
    Credit("赵磊", 120, date(2026, 9, 10), "陪同就医（周桂兰）"),
    Credit("周彦芳", 90, date(2026, 9, 17), "打扫卫生（孙玉珍）"),
    Credit("李明", 60, date(2026, 9, 24), "聊天陪伴（张德明）"),
    Credit("陈静", 240, date(2026, 10, 8), "陪同就医（李秀英，住院陪护）"),
    Credit("张伟", 120, date(2026, 10, 15), "助餐（周桂兰）"),
    Credit("刘洋", 60, date(2026, 10, 22), "聊天陪伴（张德明）"),
    Credit("赵磊", 90, date(2026, 10, 29), "打扫卫生（周桂兰）"),
    Credit("周彦芳", 120, date(2026, 11, 5), "陪同就医（李秀英）"),
    Credit("李明", 60, date(2026, 11, 12), "聊天陪伴（孙玉珍）"),
    Credit("陈静", 120, date(2026, 11, 19), "打扫卫生（张德明）"),
)

# A credit entered for the wrong volunteer: reversed (history keeps both), then entered again.
MISTAKEN_CREDIT = Credit("刘洋", 90, date(2026, 11, 20), "打扫卫生（孙玉珍）")
REVERSAL_REASON = "录错志愿者：这次打扫卫生由赵磊完成，冲正后重新记录"
CORRECTED_CREDIT = Credit("赵磊", 90, date(2026, 11, 20), "打扫卫生（孙玉珍）")


class Gift(NamedTuple):
    giver: str
    receiver: str
    minutes: int
    description: str


GIFTS: tuple[Gift, ...] = (
    Gift("周彦芳", "周桂兰", 180, "给妈妈的服务时间"),
    Gift("李明", "李秀英", 120, "给母亲"),
    Gift("张伟", "张德明", 240, "给父亲"),
)


class Donation(NamedTuple):
    giver: str
    minutes: int
    description: str


DONATIONS: tuple[Donation, ...] = (
    Donation("陈静", 180, "捐入公益时间池"),
    Donation("赵磊", 60, "捐入公益时间池"),
)


class Grant(NamedTuple):
    resident: str
    minutes: int
    description: str


POOL_GRANTS: tuple[Grant, ...] = (Grant("孙玉珍", 180, "公益时间池援助：84岁独居老人"),)


class Redemption(NamedTuple):
    resident: str
    minutes: int
    description: str
    provider: str | None  # None: a service the community provides (the `services` account).
    recorded_by: str  # the resident itself, or the coordinator for a resident without a phone


REDEMPTIONS: tuple[Redemption, ...] = (
    Redemption("周桂兰", 60, "助餐（社区长者食堂）", None, "周桂兰"),
    Redemption("李秀英", 60, "打扫卫生", None, COORDINATOR),
    Redemption("孙玉珍", 60, "聊天陪伴", "陈静", COORDINATOR),
    Redemption("孙玉珍", 60, "助餐", None, COORDINATOR),
)


class Booking(NamedTuple):
    resident: str
    minutes: int
    description: str
    booked_by: str
    outcome: str  # "pending", "captured" (paid to `provider`) or "released"
    provider: str | None


BOOKINGS: tuple[Booking, ...] = (
    Booking("周桂兰", 60, "预约助浴（12月2日）", "周桂兰", "pending", None),
    Booking("张德明", 120, "预约陪同就医（区医院复查）", "张德明", "captured", "刘洋"),
    Booking("李秀英", 60, "预约理发（家属取消）", COORDINATOR, "released", None),
)
HOLD_DAYS = 14

# Who gets a fresh token in the summary, and how to introduce them.
TOKEN_HOLDERS: tuple[tuple[str, str], ...] = (
    ("coordinator", COORDINATOR),
    ("volunteer", "周彦芳"),
    ("resident", "周桂兰"),
)


class DemoError(RuntimeError):
    """The demo could not be loaded, or the ledger failed verification afterwards."""


# ---------------------------------------------------------------------------------------------
# Loading: one method per step, in the order a community would live it.
# ---------------------------------------------------------------------------------------------


def _request_hash(function: str, key: str, args: Sequence[object]) -> bytes:
    """A stable hash of one call, standing in for the HTTP layer's hash of the request body."""
    return hashlib.sha256(json.dumps([function, key, *map(str, args)], ensure_ascii=False).encode()).digest()


class Loader:
    """Makes the demo community on one connection, remembering the ids it created."""

    def __init__(self, conn: asyncpg.Connection, request_id: str, database_url: str) -> None:
        self.conn = conn
        self.database_url = database_url
        self.request_id = request_id
        self.admin: uuid.UUID | None = None
        self.members: dict[str, uuid.UUID] = {}
        self.principals: dict[str, uuid.UUID] = {}

    async def load(self) -> None:
        await self.create_admin()
        await self.create_community()
        await self.register_members()
        await self.post_credits()
        await self.correct_mistaken_credit()
        await self.give_gifts()
        await self.donate_to_pool()
        await self.grant_from_pool()
        await self.redeem()
        await self.book_services()

    async def move(self, function: str, actor: str, key: str, *args: object) -> dict[str, Any]:
        """Call an hour-moving operation as `actor` with Idempotency-Key `key`; returns its body."""
        placeholders = ", ".join(f"${i}" for i in range(5, 5 + len(args)))
        row = await self.conn.fetchrow(
            f"select status_code, body from {function}($1, $2, $3, $4, {placeholders})",
            self.principals[actor],
            self.request_id,
            key,
            _request_hash(function, key, args),
            *args,
        )
        if row is None or row["status_code"] not in (200, 201):
            raise DemoError(f"{function} ({key}) answered {row and row['status_code']}")
        body: dict[str, Any] = json.loads(row["body"])
        return body

    async def create_admin(self) -> None:
        # Only an admin may create a community and appoint its coordinator. Its token is thrown
        # away: `timebank token create --admin` makes one for a person to use.
        token, _ = new_token()
        self.admin = await create_principal(self.database_url, "admin", None, token)

    async def create_community(self) -> None:
        await self.conn.fetchval(
            "select create_community($1, $2, $3, $4, null, $5, $6, $7, $8)",
            self.admin,
            self.request_id,
            SLUG,
            NAME,
            UNIT_MINUTES,
            MAX_TRANSACTION_MINUTES,
            MAX_BALANCE_MINUTES,
            OVERDRAFT_MINUTES,
        )

    async def register_members(self) -> None:
        # The admin appoints the coordinator; the coordinator registers everyone else.
        for person in PEOPLE:
            actor = self.admin if person.name == COORDINATOR else self.principals[COORDINATOR]
            member_id: uuid.UUID = await self.conn.fetchval(
                "select create_member($1, $2, $3, $4, $5, $6, $7, $8, null)",
                actor,
                self.request_id,
                SLUG,
                person.name,
                list(person.roles),
                person.grid,
                person.birth_date,
                person.phone,
            )
            self.members[person.name] = member_id
            self.principals[person.name] = await self.conn.fetchval(
                "select id from principals where member_id = $1", member_id
            )

    async def credit(self, key: str, credit: Credit) -> uuid.UUID:
        body = await self.move(
            "post_credit",
            COORDINATOR,
            key,
            self.members[credit.volunteer],
            credit.minutes,
            credit.service_date,
            credit.description,
        )
        return uuid.UUID(body["id"])

    async def post_credits(self) -> None:
        for n, credit in enumerate(CREDITS, start=1):
            await self.credit(f"demo-credit-{n}", credit)

    async def correct_mistaken_credit(self) -> None:
        mistaken = await self.credit(f"demo-credit-{len(CREDITS) + 1}", MISTAKEN_CREDIT)
        await self.move("reverse_transaction", COORDINATOR, "demo-reversal-1", mistaken, REVERSAL_REASON)
        await self.credit(f"demo-credit-{len(CREDITS) + 2}", CORRECTED_CREDIT)

    async def give_gifts(self) -> None:
        for n, gift in enumerate(GIFTS, start=1):
            await self.move(
                "post_transfer",
                gift.giver,
                f"demo-gift-{n}",
                self.members[gift.giver],
                self.members[gift.receiver],
                False,
                gift.minutes,
                gift.description,
            )

    async def donate_to_pool(self) -> None:
        for n, donation in enumerate(DONATIONS, start=1):
            await self.move(
                "post_transfer",
                donation.giver,
                f"demo-donation-{n}",
                self.members[donation.giver],
                None,
                True,
                donation.minutes,
                donation.description,
            )

    async def grant_from_pool(self) -> None:
        for n, grant in enumerate(POOL_GRANTS, start=1):
            await self.move(
                "post_pool_grant",
                COORDINATOR,
                f"demo-pool-grant-{n}",
                self.members[grant.resident],
                grant.minutes,
                grant.description,
            )

    async def redeem(self) -> None:
        for n, redemption in enumerate(REDEMPTIONS, start=1):
            await self.move(
                "post_redemption",
                redemption.recorded_by,
                f"demo-redemption-{n}",
                self.members[redemption.resident],
                redemption.minutes,
                redemption.description,
                self.members[redemption.provider] if redemption.provider else None,
            )

    async def book_services(self) -> None:
        expires_at = datetime.now(UTC) + timedelta(days=HOLD_DAYS)
        for n, booking in enumerate(BOOKINGS, start=1):
            key = f"demo-hold-{n}"
            hold = await self.move(
                "place_hold",
                booking.booked_by,
                key,
                self.members[booking.resident],
                booking.minutes,
                booking.description,
                expires_at,
            )
            hold_id = uuid.UUID(hold["id"])
            if booking.outcome == "captured":
                provider = self.members[booking.provider] if booking.provider else None
                await self.move("capture_hold", COORDINATOR, f"{key}-capture", hold_id, None, provider)
            elif booking.outcome == "released":
                await self.move("release_hold", COORDINATOR, f"{key}-release", hold_id)


async def _load_once(conn: asyncpg.Connection, request_id: str, database_url: str) -> bool:
    """Load the demo unless it is there already; True when this run loaded it."""
    if await conn.fetchval("select 1 from communities where slug = $1", SLUG):
        return False
    try:
        async with conn.transaction():
            await Loader(conn, request_id, database_url).load()
    except asyncpg.UniqueViolationError as exc:
        # Another `timebank demo` created the community meanwhile; its load stands, ours rolled back.
        if exc.constraint_name != "communities_slug_key":
            raise
        return False
    return True


class IssuedToken(NamedTuple):
    role: str
    name: str
    member_id: uuid.UUID
    account_id: uuid.UUID
    token: str


async def _issue_tokens(conn: asyncpg.Connection, request_id: str) -> list[IssuedToken]:
    """Fresh tokens for a few members, issued as the command line (the audit trail says `system`)."""
    issued = []
    for role, name in TOKEN_HOLDERS:
        row = await conn.fetchrow(
            """
            select m.id, a.id as account_id
              from members m join communities c on c.id = m.community_id join accounts a on a.member_id = m.id
             where c.slug = $1 and m.display_name = $2
             order by m.seq limit 1
            """,
            SLUG,
            name,
        )
        if row is None:
            raise DemoError(f"the demo community has no member {name}")
        token, digest = new_token()
        await conn.fetchval("select issue_member_token(null, $1, $2, $3)", request_id, row["id"], digest)
        issued.append(IssuedToken(role, name, row["id"], row["account_id"], token))
    return issued


# ---------------------------------------------------------------------------------------------
# The summary printed by `timebank demo`.
# ---------------------------------------------------------------------------------------------


def _width(text: str) -> int:
    """Columns `text` takes in a terminal: Chinese characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _width(text))


def _hours(minutes: int) -> str:
    return f"{minutes} min ({minutes / 60:g} h)"


def _base_url(settings: Settings) -> str:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host  # noqa: S104 (a comparison)
    return f"http://{host}:{settings.port}"


async def _summary(
    conn: asyncpg.Connection, settings: Settings, loaded: bool, tokens: list[IssuedToken], report: Report
) -> str:
    community = await conn.fetchrow("select id, name, unit_minutes from communities where slug = $1", SLUG)
    if community is None:
        raise DemoError(f"no community {SLUG} after loading the demo")
    members = await conn.fetch(
        """
        select m.display_name, m.roles, m.grid, m.phone is null as no_phone,
               a.balance_minutes, a.held_minutes
          from members m join accounts a on a.member_id = m.id
         where m.community_id = $1 order by m.seq
        """,
        community["id"],
    )
    system = await conn.fetch(
        "select kind, balance_minutes from accounts where community_id = $1 and member_id is null order by kind",
        community["id"],
    )
    kinds = await conn.fetch(
        "select kind, count(*) as n from transactions where community_id = $1 group by kind order by kind",
        community["id"],
    )
    notes = {person.name: person.note for person in PEOPLE}
    base = _base_url(settings)
    status = "loaded" if loaded else "was already loaded; nothing was added, fresh tokens were issued"
    lines = [
        f"{community['name']} ({SLUG}) {status}.",
        f"  policy: hours move in units of {community['unit_minutes']} minutes",
        "",
        "Members                 roles                  grid  balance              held    note",
    ]
    for m in members:
        note = notes.get(m["display_name"], "")
        line = (
            f"  {_pad(m['display_name'], 22)}"
            f"{_pad(', '.join(m['roles']), 23)}"
            f"{_pad(m['grid'] or '', 6)}"
            f"{_pad(_hours(m['balance_minutes']), 21)}"
            f"{_pad(str(m['held_minutes']) + ' min' if m['held_minutes'] else '', 8)}"
            f"{note}"
        )
        lines.append(line.rstrip())
    lines.append("")
    lines.append("System accounts: " + ", ".join(f"{a['kind']} {_hours(a['balance_minutes'])}" for a in system))
    lines.append("Transactions: " + ", ".join(f"{k['kind']} {k['n']}" for k in kinds))
    lines.append("")
    lines.append("Tokens (shown once; only their SHA-256 is stored):")
    lines.extend(f"  {_pad(t.role + ' ' + t.name, 22)}{t.token}" for t in tokens)
    lines.append("")
    lines.append(f"Try it (with `timebank serve` running at {base}):")
    by_role = {t.role: t for t in tokens}
    for role in ("volunteer", "resident"):
        t = by_role[role]
        lines.append(f'  curl -H "Authorization: Bearer {t.token}" {base}/v1/me')
        lines.append(f'  curl -H "Authorization: Bearer {t.token}" {base}/v1/accounts/{t.account_id}/entries')
    staff = f'  curl -H "Authorization: Bearer {by_role["coordinator"].token}"'
    lines.append(f'{staff} "{base}/v1/communities/{SLUG}/transactions?kind=reversal"')
    lines.append(f"{staff} {base}/v1/communities/{SLUG}/members")
    # A write that moves hours: the coordinator credits the volunteer. The key makes a retry safe:
    # sent again, the same request answers the same transaction and moves nothing.
    volunteer = by_role["volunteer"]
    credit = {
        "member_id": str(volunteer.member_id),
        "minutes": 60,
        "service_date": CREDITS[-1].service_date.isoformat(),
        "description": "助餐",
    }
    lines.append(f"{staff} -H 'Idempotency-Key: try-credit-1' -H 'Content-Type: application/json' \\")
    lines.append(f"       -d '{json.dumps(credit, ensure_ascii=False)}' {base}/v1/credits")
    lines.append("")
    lines.append(f"ledger verified: {len(report.checked)} checks, no violations")
    return "\n".join(lines)


async def load_demo(settings: Settings, database_url: str) -> str:
    """Load the sample community (once), issue fresh tokens, verify the ledger; return a summary.

    The database must be migrated already (`timebank migrate`, or `timebank serve` at start).
    """
    request_id = "demo-" + uuid.uuid4().hex
    conn = await asyncpg.connect(**connect_kwargs(settings, database_url))
    try:
        loaded = await _load_once(conn, request_id, database_url)
        tokens = await _issue_tokens(conn, request_id)
        report = await verify(conn)
        if not report.ok:
            found = "; ".join(f"{name}: {message}" for name, message in report.violations)
            raise DemoError(f"the ledger failed verification: {found}")
        return await _summary(conn, settings, loaded, tokens, report)
    finally:
        await conn.close()
