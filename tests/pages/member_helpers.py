"""Helpers for the member pages' tests: people of one community with PINs, forms read from the HTML."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from tests.client import Api, Community, Member
from tests.pages.helpers import PIN, Resident, csrf_of, sign_in

ZH = {"Accept-Language": "zh-CN"}
EN = {"Accept-Language": "en-GB,en;q=0.9"}


@dataclass
class Person(Resident):
    name: str


async def person(api: Api, community: Community, *roles: str, name: str, minutes: int = 0, **optional: str) -> Person:
    """A member of `community` with PIN 246810 and `minutes` credited (as a volunteer's served hours)."""
    member: Member = await api.member(community, *roles, name=name, **optional)
    response = await api.post(f"/v1/members/{member.id}/pin", api.admin_token, {"pin": PIN}, key=uuid.uuid4().hex)
    assert response.status_code == 204, response.text
    left = minutes
    while left > 0:  # one credit is at most a day's minutes
        assert (await api.credit(member, min(left, 1440))).status_code == 201
        left -= min(left, 1440)
    got = (await api.get(f"/v1/members/{member.id}", api.admin_token)).json()
    return Person(community, member, got["member_no"], name)


async def relate(api: Api, one: Person, other: Person, relation: str = "child") -> None:
    response = await api.post(
        f"/v1/members/{one.member.id}/relatives", api.admin_token,
        {"relative_member_id": other.member.id, "relation": relation},
    )  # fmt: skip
    assert response.status_code == 201, response.text


async def as_person(client: Any, who: Person, **headers: str) -> None:
    """The client's cookies become `who`'s session."""
    client.cookies.clear()
    assert (await sign_in(client, who, **headers)).status_code == 303


def hidden(html: str, name: str, nth: int = 0) -> str:
    found = re.findall(rf'name="{name}" value="([^"]*)"', html)
    assert len(found) > nth, (name, html)
    return found[nth]


def form_of(html: str, **values: str) -> dict[str, str]:
    """The hidden fields of the page's form that carries a key (or the first form), with `values` added."""
    fields = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', html))
    fields["csrf_token"] = csrf_of(html)
    return fields | values


def balance_on(html: str) -> int:
    found = re.search(r'<data id="balance" value="(-?\d+)">', html)
    assert found, html
    return int(found.group(1))
