# ruff: noqa: E501, PLR0912, PLR0915, S311 (a story written as data; random only shapes it, from a fixed seed)
"""The people and the four months of life of the demo community 紫轩社区 (`timebank demo`).

Pure data, made from a fixed seed: the same people every run, with dates relative to the day the
demo is loaded (the three months before this one, and this month so far, in Asia/Shanghai).
timebank/demo.py plays it through the real SQL operations.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

TIME_ZONE = ZoneInfo("Asia/Shanghai")
GRIDS = tuple(str(n) for n in range(1, 23))
SEED = 10

COORDINATOR = "王丽华"
AUDITOR = "陈国平"
VOLUNTEER = "周彦芳"  # the README's quick start credits her
RESIDENT = "周桂兰"  # 周彦芳's mother
TEEN = "林小雨"

# code, what a resident asks, what a volunteer reports (minutes are multiples of the 15-minute unit)
SERVICES: dict[str, tuple[str, ...]] = {
    "meals": ("送午餐到家", "陪同去长者食堂吃饭", "帮忙做晚饭"),
    "cleaning": ("打扫卫生、擦窗户", "换季整理衣柜", "厨房清洁"),
    "bathing": ("协助洗澡", "协助洗头、剪指甲"),
    "medical_escort": ("陪同去区医院复查", "陪同社区卫生站测血压", "陪同配药"),
    "companionship": ("聊天陪伴", "读报、聊天", "陪同散步"),
    "errands": ("代缴水电煤费用", "代买药品和日用品", "代取快递"),
}
MINUTES = {"meals": 60, "cleaning": 120, "bathing": 60, "medical_escort": 180, "companionship": 60, "errands": 60}
COMMENTS = ("小伙子很细心，谢谢！", "准时来的，服务很好", "非常满意", "态度好，下次还找她", "辛苦了", "很耐心")
ACTIVITIES = {
    1: "元旦慰问独居老人",
    2: "春节写春联送福字",
    3: "学雷锋志愿服务日",
    4: "清明社区环境整治",
    5: "劳动节社区大扫除",
    6: "端午节包粽子送老人",
    7: "夏季送清凉",
    8: "七夕邻里节",
    9: "中秋节慰问高龄老人",
    10: "重阳节敬老活动",
    11: "冬季义诊",
    12: "冬至包饺子",
}

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严"
ELDER_GIVEN = [
    "桂兰",
    "秀英",
    "玉珍",
    "淑珍",
    "凤英",
    "桂英",
    "秀兰",
    "玉兰",
    "德明",
    "建国",
    "国强",
    "志明",
    "福生",
    "长根",
    "金宝",
    "阿婆",
    "素珍",
    "美华",
    "宝珍",
    "根娣",
    "月娥",
    "凤珍",
    "兰英",
    "振华",
    "永福",
    "庆余",
    "荣根",
    "伟民",
    "惠芳",
    "雅琴",
]
ADULT_GIVEN = [
    "彦芳",
    "明",
    "静",
    "伟",
    "洋",
    "磊",
    "婷",
    "敏",
    "军",
    "丽",
    "强",
    "娜",
    "涛",
    "超",
    "艳",
    "杰",
    "勇",
    "芳",
    "霞",
    "鹏",
    "慧",
    "斌",
    "晨",
    "颖",
    "宇",
    "璐",
    "浩",
    "倩",
    "峰",
    "蕾",
    "俊",
    "雪",
    "晓东",
    "海燕",
    "春梅",
    "志刚",
    "建华",
    "丽萍",
    "文博",
    "佳怡",
]


@dataclass
class Person:
    name: str
    roles: tuple[str, ...]
    grid: str
    birth_date: date
    phone: str | None  # None: no phone of their own; the coordinator acts for them
    parent: str | None = None  # a volunteer's elderly parent among the residents
    pool_eligible: bool = False


@dataclass
class Request:
    """One service request and the steps of its life, each at a moment of the story."""

    label: str
    resident: str
    service_type: str
    funding: str  # wished for; own or pool fall back to community when the hours are not there
    created: datetime
    scheduled: datetime
    description: str
    steps: list[tuple[datetime, str, dict[str, object]]] = field(default_factory=list)
    provider: str = ""  # set while the story is played


@dataclass
class Story:
    now: datetime
    months: list[date]  # first days, oldest first; the last is this month
    people: list[Person]
    requests: list[Request]
    events: list[tuple[datetime, str, dict[str, object]]]  # everything else: credits, gifts, batches...


def _age(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def _phone(rng: random.Random) -> str:
    return "1" + rng.choice("3589") + "".join(rng.choice("0123456789") for _ in range(9))


def _people(rng: random.Random, today: date) -> list[Person]:
    used: set[str] = set()

    def name(given: list[str], fixed: str | None = None) -> str:
        if fixed is not None:
            used.add(fixed)
            return fixed
        while True:
            candidate = rng.choice(SURNAMES) + rng.choice(given)
            if candidate not in used:
                used.add(candidate)
                return candidate

    def born(age: int) -> date:
        return today.replace(year=today.year - age) - timedelta(days=rng.randrange(1, 360))

    people = [
        Person(COORDINATOR, ("coordinator",), "1", date(1979, 3, 12), _phone(rng)),
        Person("何建军", ("coordinator",), "12", date(1983, 8, 2), _phone(rng)),
        Person(AUDITOR, ("auditor",), "1", date(1968, 5, 20), _phone(rng)),
    ]
    used.update(p.name for p in people)
    for n, grid in enumerate(GRIDS):
        elders = []
        for k in range(5):
            age = rng.choice((63, 66, 68, 71, 74, 77, 79)) if k < 3 else rng.choice((81, 83, 85, 88, 91))
            no_phone = k == 4 or (k == 3 and n % 3 == 0)
            fixed = RESIDENT if (n, k) == (0, 0) else None
            elder = Person(
                name(ELDER_GIVEN, fixed),
                ("resident",),
                grid,
                date(1950, 2, 14) if fixed else born(age),
                None if no_phone else _phone(rng),
                pool_eligible=age >= 80,
            )
            elders.append(elder)
        people.extend(elders)
        for k in range(3):
            fixed = VOLUNTEER if (n, k) == (0, 0) else None
            parent = elders[k] if k < 2 else None
            surname = parent.name[0] if parent and not fixed else None
            if fixed:
                volunteer_name = name(ADULT_GIVEN, fixed)
            elif surname:
                volunteer_name = name([g for g in ADULT_GIVEN if surname + g not in used] or ADULT_GIVEN)
                volunteer_name = (
                    surname + volunteer_name[1:] if surname + volunteer_name[1:] not in used else volunteer_name
                )
                used.add(volunteer_name)
            else:
                volunteer_name = name(ADULT_GIVEN)
            people.append(
                Person(
                    volunteer_name,
                    ("volunteer",),
                    grid,
                    date(1990, 6, 18) if fixed else born(rng.randrange(22, 56)),
                    _phone(rng),
                    parent=parent.name if parent else None,
                )
            )
        if n % 4 == 1:  # a retiree who helps their neighbours and is helped in turn
            people.append(Person(name(ELDER_GIVEN), ("volunteer", "resident"), grid, born(64), _phone(rng)))
    people.append(Person(TEEN, ("volunteer",), "5", born(16), _phone(rng)))
    return people


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=TIME_ZONE)


def build(now: datetime) -> Story:
    """The story for a demo loaded at `now`; deterministic but for where `now` falls."""
    rng = random.Random(SEED)
    now = now.astimezone(TIME_ZONE)
    today = now.date()
    first = today.replace(day=1)
    months = []
    for back in (3, 2, 1, 0):
        year, number = first.year, first.month - back
        while number < 1:
            year, number = year - 1, number + 12
        months.append(date(year, number, 1))
    people = _people(rng, today)
    residents = [p for p in people if "resident" in p.roles]
    volunteers = [p for p in people if "volunteer" in p.roles and _age(p.birth_date, today) >= 18]
    by_grid = {g: [p for p in volunteers if p.grid == g] for g in GRIDS}
    latest = now - timedelta(hours=3)  # history ends here; the jobs' steps come after it
    requests: list[Request] = []
    events: list[tuple[datetime, str, dict[str, object]]] = []
    types = list(SERVICES)

    def new_request(resident: Person, created: datetime, scheduled: datetime, n: int, funding: str) -> Request:
        code = types[n % len(types)]
        label = f"r{len(requests) + 1}"
        request = Request(label, resident.name, code, funding, created, scheduled, rng.choice(SERVICES[code]))
        requests.append(request)
        return request

    def volunteer_for(resident: Person) -> Person:
        pool = by_grid[resident.grid] if rng.random() < 0.8 else volunteers
        return rng.choice([v for v in pool if v.name != resident.name])

    def complete(request: Request, resident: Person, until: datetime) -> None:
        volunteer = volunteer_for(resident)
        assigned = request.created + timedelta(hours=rng.randrange(1, 6))
        minutes = MINUTES[request.service_type] - rng.choice((0, 0, 0, 15))
        checked_in = request.scheduled
        reported = checked_in + timedelta(minutes=minutes)
        confirmed = min(reported + timedelta(hours=rng.randrange(2, 30)), until)
        by = "coordinator" if rng.random() < 0.15 else "self"
        request.steps += [
            (assigned, "assign", {"volunteer": volunteer.name, "by": by}),
            (checked_in, "check_in", {}),
            (reported, "report", {"minutes": minutes}),
            (confirmed, "confirm", {"rating": rng.choice((5, 5, 5, 4, 4, 3)), "comment": rng.choice(COMMENTS)}),
        ]

    # Completed services: about two per grid a month, every type every month, every kind of funding.
    n = 0
    residents_by_grid = [[r for r in residents if r.grid == g] for g in GRIDS]
    for mi, month in enumerate(months):
        end = min(_next_month(month), latest.date())
        days = (end - month).days
        if days < 3:
            continue
        # Two residents of each grid a month (in turn); this month so far, one in every other grid.
        current = month == months[-1]
        chosen = [
            grid_residents[(2 * mi + j) % len(grid_residents)]
            for g, grid_residents in enumerate(residents_by_grid)
            for j in range(1 if current else 2)
            if not (current and g % 2)
        ]
        for resident in chosen:
            day = month + timedelta(days=rng.randrange(0, days - 2))
            created = _at(day, rng.randrange(8, 11), rng.choice((0, 15, 30, 45)))
            scheduled = _at(day + timedelta(days=1), rng.choice((9, 10, 14, 15)))
            if scheduled + timedelta(hours=5) > latest:
                continue
            funding = rng.choice(("community", "community", "own", "own", "pool" if resident.pool_eligible else "own"))
            request = new_request(resident, created, scheduled, n, funding)
            n += 1
            complete(request, resident, latest)
    # The other fates, once or twice each month of history.
    story_residents = [r for r in residents if r.phone is not None]
    no_phone = [r for r in residents if r.phone is None]
    for month in months[:-1]:
        day = month + timedelta(days=rng.randrange(3, 20))
        r1, r2, r3 = rng.sample(story_residents, 3)
        # a cancellation by the resident before anyone came
        req = new_request(r1, _at(day, 9), _at(day + timedelta(days=2), 10), n, "own")
        req.steps.append(
            (_at(day + timedelta(days=1), 18), "cancel", {"by": "self", "reason": "家里人回来了，不需要了"})
        )
        # a volunteer withdraws (sick); another volunteer takes it over and does it
        req = new_request(r2, _at(day, 10), _at(day + timedelta(days=2), 14), n + 1, "community")
        first_volunteer = volunteer_for(r2)
        while req.steps == [] or req.steps[0][2]["volunteer"] == first_volunteer.name:
            req.steps = []
            complete(req, r2, latest)
        req.steps[0] = (_at(day + timedelta(days=1), 21), "assign", req.steps[0][2])
        req.steps[:0] = [
            (_at(day, 12), "assign", {"volunteer": first_volunteer.name, "by": "self"}),
            (
                _at(day + timedelta(days=1), 20),
                "withdraw",
                {"volunteer": first_volunteer.name, "reason": "临时生病，去不了"},
            ),
        ]
        # a dispute the coordinator settles with other minutes
        req = new_request(r3, _at(day + timedelta(days=1), 9), _at(day + timedelta(days=3), 9), n + 2, "own")
        complete(req, r3, latest)
        reported = req.steps[2][0]
        del req.steps[3]
        req.steps.append((reported + timedelta(hours=3), "dispute", {"reason": "实际只待了一个小时"}))
        req.steps.append(
            (reported + timedelta(days=1), "settle", {"minutes": 60, "rating": 3, "comment": "协调员核实后按60分钟记"})
        )
        # the coordinator cancels for a resident without a phone (in hospital)
        req = new_request(
            rng.choice(no_phone), _at(day + timedelta(days=2), 9), _at(day + timedelta(days=5), 9), n + 3, "community"
        )
        req.steps.append((_at(day + timedelta(days=3), 11), "cancel", {"by": "coordinator", "reason": "老人住院了"}))
        n += 4

    # Life going on now: every status that is not final.
    recent = [now - timedelta(days=d, hours=h) for d, h in ((3, 5), (2, 6), (1, 20), (1, 7), (0, 9), (0, 6))]
    live = rng.sample(story_residents, 12)
    for k, status in enumerate(
        ("open", "open", "assigned", "assigned", "in_progress", "reported", "disputed", "withdrawn")
    ):
        resident = live[k]
        created = recent[k % len(recent)]
        if status in ("open", "assigned", "withdrawn"):
            scheduled = (now + timedelta(days=1 + k % 3)).replace(hour=9 + k % 6, minute=0, second=0, microsecond=0)
        else:
            scheduled = (created + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
        req = new_request(resident, created, scheduled, n + k, ("own", "community", "pool")[k % 3])
        volunteer = volunteer_for(resident)
        if status in ("assigned", "in_progress", "reported", "disputed"):
            req.steps.append((created + timedelta(minutes=40), "assign", {"volunteer": volunteer.name, "by": "self"}))
        if status in ("in_progress", "reported", "disputed"):
            req.steps.append((scheduled, "check_in", {}))
        if status in ("reported", "disputed"):
            req.steps.append((scheduled + timedelta(minutes=60), "report", {"minutes": 60}))
        if status == "disputed":
            req.steps.append((scheduled + timedelta(hours=5), "dispute", {"reason": "志愿者没有来，但记了时长"}))
        if status == "withdrawn":
            req.steps += [
                (created + timedelta(minutes=30), "assign", {"volunteer": volunteer.name, "by": "self"}),
                (created + timedelta(hours=2), "withdraw", {"volunteer": volunteer.name, "reason": "时间冲突"}),
            ]
    n += 8
    # For the system jobs (played after the rest): one reported 7 days ago and never confirmed,
    # one never claimed whose hold expired (scheduled 14 days ago).
    auto = new_request(live[8], now - timedelta(days=9), now - timedelta(days=7, hours=5), n, "community")
    auto.steps += [
        (now - timedelta(days=8, hours=20), "assign", {"volunteer": volunteer_for(live[8]).name, "by": "self"}),
        (now - timedelta(days=7, hours=5), "check_in", {}),
        (now - timedelta(days=7, hours=4), "report", {"minutes": 60}),
        (now - timedelta(hours=2), "auto_confirm", {}),
    ]
    expired_for = next(r for r in residents if r.pool_eligible and r.name not in {x.name for x in live} and r.phone)
    expired = new_request(
        expired_for, now - timedelta(days=16), now - timedelta(days=14, hours=2, minutes=10), n + 1, "pool"
    )
    events.append((now - timedelta(days=17), "donate", {"from": None, "minutes": 240}))
    expired.steps.append((now - timedelta(hours=1, minutes=50), "expire", {}))

    # Relatives and gifts: volunteers give hours to their elderly parents.
    for p in people:
        if p.parent:
            events.append(
                (_at(months[0], 9) + timedelta(minutes=len(events)), "relative", {"child": p.name, "parent": p.parent})
            )
    for p in volunteers:
        if p.parent and (p.name == VOLUNTEER or rng.random() < 0.7):
            day = months[rng.randrange(0, 3)] + timedelta(days=rng.randrange(14, 27))
            events.append(
                (
                    _at(day, 20, rng.randrange(0, 59)),
                    "gift",
                    {"from": p.name, "to": p.parent, "minutes": rng.choice((60, 120, 180))},
                )
            )
    # Activity days: one a month, about 30 volunteers each, credited in one batch.
    for mi, month in enumerate(months[:-1]):
        day = month + timedelta(days=rng.randrange(4, 8) if mi == 0 else rng.randrange(10, 25))
        helpers = [VOLUNTEER, *rng.sample([v.name for v in volunteers if v.name != VOLUNTEER], 29)]
        events.append(
            (_at(day, 18), "batch", {"description": ACTIVITIES[month.month], "day": day, "volunteers": helpers})
        )
    # Donations to the pool, and grants from it to residents over 80.
    donors = rng.sample([v.name for v in volunteers], 16)
    for k, donor in enumerate(donors):
        month = months[k % 3]
        events.append(
            (
                _at(month + timedelta(days=rng.randrange(20, 27)), 19, k),
                "donate",
                {"from": donor, "minutes": rng.choice((120, 180, 240))},
            )
        )
    eligible = [r.name for r in residents if r.pool_eligible]
    for k, resident_name in enumerate(rng.sample(eligible, 4)):
        month = months[1 + k % 2]
        events.append((_at(month + timedelta(days=27), 10, k), "grant", {"to": resident_name, "minutes": 120}))
    # Hand-recorded services (no request): the community canteen each month, paid with hours her
    # daughter gave her.
    events.append(
        (_at(months[0] + timedelta(days=11), 20), "gift", {"from": VOLUNTEER, "to": RESIDENT, "minutes": 120})
    )
    for mi, month in enumerate(months[:-1]):
        events.append(
            (
                _at(month + timedelta(days=26), 12, 10),
                "redeem",
                {
                    "resident": RESIDENT,
                    "minutes": 30 if mi == 0 else 60,
                    "description": "社区长者食堂午餐",
                    "provider": None,
                },
            )
        )
    canteen = months[2] + timedelta(days=26)
    events += [
        (
            _at(canteen, 12),
            "redeem",
            {"resident": RESIDENT, "minutes": 60, "description": "社区长者食堂午餐", "provider": None},
        ),
        (
            _at(canteen, 15),
            "redeem",
            {"resident": no_phone[0].name, "minutes": 60, "description": "理发", "provider": None},
        ),
    ]
    # A credit for the wrong volunteer, reversed with a reason and entered again.
    mistake = months[2] + timedelta(days=11)
    wrong, right = rng.sample([v.name for v in volunteers], 2)
    events += [
        (
            _at(mistake, 16),
            "credit",
            {"volunteer": wrong, "minutes": 90, "day": mistake, "description": "打扫楼道", "key": "mistake"},
        ),
        (
            _at(mistake, 17),
            "reverse",
            {"key": "mistake", "reason": f"录错志愿者：这次打扫楼道由{right}完成，冲正后重新记录"},
        ),
        (
            _at(mistake, 17, 5),
            "credit",
            {"volunteer": right, "minutes": 90, "day": mistake, "description": "打扫楼道", "key": "fixed"},
        ),
    ]
    # Holds placed by hand: one still pending, one captured for a volunteer, one released.
    hold_day = now - timedelta(days=4)
    events += [
        (
            hold_day,
            "hold",
            {"resident": RESIDENT, "minutes": 60, "description": "预约助浴（下周）", "outcome": "pending"},
        ),
        (
            hold_day + timedelta(minutes=20),
            "hold",
            {"resident": RESIDENT, "minutes": 60, "description": "预约理发（家属取消）", "outcome": "released"},
        ),
        (
            hold_day + timedelta(minutes=40),
            "hold",
            {
                "resident": RESIDENT,
                "minutes": 60,
                "description": "预约陪同配药",
                "outcome": "captured",
                "provider": VOLUNTEER,
            },
        ),
    ]
    return Story(now, months, people, requests, events)


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)
