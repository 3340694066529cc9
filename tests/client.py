"""A small client for the tests: the real HTTP API, with helpers to make data through it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from litestar.testing import AsyncTestClient


@dataclass
class Community:
    slug: str
    id: str
    accounts: dict[str, str]


@dataclass
class Member:
    id: str
    account_id: str
    token: str
    community: str


class Api:
    def __init__(self, client: AsyncTestClient[Any], admin_token: str) -> None:
        self.client = client
        self.admin_token = admin_token

    @staticmethod
    def auth(token: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"} if token else {}

    async def get(self, path: str, token: str | None, **params: Any) -> Any:
        return await self.client.get(path, headers=self.auth(token), params=params or None)

    async def post(
        self, path: str, token: str | None, body: Any = None, key: str | None = "auto", **headers: str
    ) -> Any:
        sent = dict(self.auth(token), **headers)
        if key == "auto":
            key = uuid.uuid4().hex
        if key is not None:
            sent["Idempotency-Key"] = key
        return await self.client.post(path, headers=sent, json=body)

    async def put(self, path: str, token: str | None, body: Any) -> Any:
        return await self.client.put(path, headers=self.auth(token), json=body)

    async def patch(self, path: str, token: str | None, body: Any) -> Any:
        return await self.client.patch(path, headers=self.auth(token), json=body)

    async def community(self, slug: str | None = None, **policy: int | str) -> Community:
        slug = slug or "c-" + uuid.uuid4().hex[:12]
        body: dict[str, Any] = {"slug": slug, "name": f"社区 {slug}"}
        if policy:
            body["policy"] = policy
        response = await self.post("/v1/communities", self.admin_token, body, key=None)
        assert response.status_code == 201, response.text
        data = response.json()
        return Community(slug=slug, id=data["id"], accounts=data["accounts"])

    async def member(
        self, community: Community, *roles: str, grid: str = "1", name: str = "周彦芳", **optional: str
    ) -> Member:
        response = await self.post(
            f"/v1/communities/{community.slug}/members",
            self.admin_token,
            {"display_name": name, "roles": list(roles or ("volunteer",)), "grid": grid, **optional},
            key=None,
        )
        assert response.status_code == 201, response.text
        data = response.json()
        token_response = await self.post(f"/v1/members/{data['id']}/tokens", self.admin_token, key=None)
        assert token_response.status_code == 201, token_response.text
        return Member(
            id=data["id"], account_id=data["account_id"], token=token_response.json()["token"], community=community.slug
        )

    async def credit(self, member: Member, minutes: int, token: str | None = None) -> Any:
        return await self.post(
            "/v1/credits",
            token or self.admin_token,
            {"member_id": member.id, "minutes": minutes, "service_date": "2026-11-01", "description": "served"},
        )

    async def balance(self, account_id: str) -> int:
        response = await self.get(f"/v1/accounts/{account_id}", self.admin_token)
        assert response.status_code == 200, response.text
        balance: int = response.json()["balance_minutes"]
        return balance

    async def account(self, account_id: str) -> dict[str, Any]:
        response = await self.get(f"/v1/accounts/{account_id}", self.admin_token)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data
