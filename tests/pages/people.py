"""People of every role with a PIN, for the pages' tests of who sees what."""

from __future__ import annotations

import uuid
from typing import Any

from tests.client import Api, Community
from tests.pages.helpers import PIN, Resident, sign_in

ROLES = ("resident", "volunteer", "coordinator", "auditor")


async def person(api: Api, community: Community, *roles: str, name: str = "周彦芳", grid: str = "1") -> Resident:
    """A member of `community` with these roles and PIN 246810."""
    member = await api.member(community, *roles, name=name, grid=grid)
    response = await api.post(f"/v1/members/{member.id}/pin", api.admin_token, {"pin": PIN}, key=uuid.uuid4().hex)
    assert response.status_code == 204, response.text
    got = (await api.get(f"/v1/members/{member.id}", api.admin_token)).json()
    return Resident(community, member, got["member_no"])


async def signed_in(client: Any, someone: Resident, **headers: str) -> None:
    """Sign `someone` in on the test client (its cookies then hold the session)."""
    client.cookies.clear()
    answer = await sign_in(client, someone, **headers)
    assert answer.status_code == 303, answer.text
