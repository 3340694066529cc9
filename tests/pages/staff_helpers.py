"""Helpers for the coordinator's pages' tests: a community with a coordinator who has a PIN, and
members made through the API."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from tests.client import Api, Community, Member
from tests.pages.helpers import PIN, Resident, csrf_of, sign_in


@dataclass
class Office:
    """A community and its coordinator (signed in through the pages by `enter`)."""

    community: Community
    coordinator: Resident


async def with_pin(api: Api, community: Community, member: Member) -> Resident:
    response = await api.post(f"/v1/members/{member.id}/pin", api.admin_token, {"pin": PIN}, key=uuid.uuid4().hex)
    assert response.status_code == 204, response.text
    got = (await api.get(f"/v1/members/{member.id}", api.admin_token)).json()
    return Resident(community, member, got["member_no"])


async def office(api: Api, name: str = "李主任") -> Office:
    community = await api.community()
    coordinator = await api.member(community, "coordinator", name=name)
    return Office(community, await with_pin(api, community, coordinator))


async def member_no(api: Api, member: Member) -> str:
    number: str = (await api.get(f"/v1/members/{member.id}", api.admin_token)).json()["member_no"]
    return number


async def enter(client: Any, person: Resident, **headers: str) -> str:
    """Sign `person` in on the pages (cookies cleared first); answers a CSRF token for its forms."""
    client.cookies.clear()
    signed = await sign_in(client, person, **headers)
    assert signed.status_code == 303, signed.text
    page = await client.get("/me", headers=headers)
    return csrf_of(page.text)


def key_of(html: str, form_action: str | None = None) -> str:
    """The idempotency key of the (first, or the named) form on the page."""
    start = html.index(f'action="{form_action}"') if form_action else 0
    found = re.search(r'name="key" value="([0-9a-f]+)"', html[start:])
    assert found, html
    return found.group(1)
