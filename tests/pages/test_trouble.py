"""When the database is away, a page says so in words (the API's status, a page's body)."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from tests.pages.helpers import csrf_of
from tests.pg import refusing_connections
from timebank.app import create_app
from timebank.config import Settings


async def test_a_page_says_in_words_when_the_database_is_away(
    fresh_db: str, server_url: str, settings: Settings
) -> None:
    async with AsyncTestClient(app=create_app(settings, fresh_db)) as client:
        form = await client.get("/login", headers={"Accept-Language": "zh-CN"})
        assert form.status_code == 200
        async with refusing_connections(server_url, fresh_db):
            answer = await client.post(
                "/login",
                data={"csrf_token": csrf_of(form.text), "community": "c", "member_no": "000001", "pin": "123456"},
                headers={"Accept-Language": "zh-CN"},
            )
            # The API says the same as a problem: 503, whatever PostgreSQL said when refusing to connect.
            api = await client.get("/v1/me", headers={"Authorization": f"Bearer {settings.admin_token}"})
    assert answer.status_code == 503, (answer.status_code, answer.text[-600:])
    assert answer.headers["content-type"].startswith("text/html")
    assert "请等一分钟再试" in answer.text
    assert answer.headers.get("retry-after") == "1"
    assert (api.status_code, api.json()["code"]) == (503, "unavailable"), api.text
