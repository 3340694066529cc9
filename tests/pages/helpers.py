"""Helpers for the pages' tests: a resident with a PIN and some hours, forms read from the HTML."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from tests.client import Api, Community, Member

PIN = "246810"


@dataclass
class Resident:
    community: Community
    member: Member
    member_no: str


async def resident_with_pin(api: Api, minutes: int = 750, name: str = "周桂兰") -> Resident:
    """A resident (and volunteer, to earn hours) of a new community with PIN 246810 and `minutes` credited."""
    community = await api.community()
    member = await api.member(community, "volunteer", "resident", name=name)
    response = await api.post(f"/v1/members/{member.id}/pin", api.admin_token, {"pin": PIN}, key=uuid.uuid4().hex)
    assert response.status_code == 204, response.text
    left = minutes
    while left > 0:  # one credit is at most a day's minutes
        step = min(left, 1440)
        assert (await api.credit(member, step)).status_code == 201
        left -= step
    got = (await api.get(f"/v1/members/{member.id}", api.admin_token)).json()
    return Resident(community, member, got["member_no"])


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', html)
    assert found, html
    return found.group(1)


async def sign_in(client: Any, resident: Resident, pin: str = PIN, **headers: str) -> Any:
    """Draw /login, then send its form; answers the POST's response."""
    page = await client.get("/login", headers=headers)
    return await client.post(
        "/login",
        data={"csrf_token": csrf_of(page.text), "community": resident.community.slug,
              "member_no": resident.member_no, "pin": pin},
        headers=headers,
    )  # fmt: skip
