"""What the real server does with bytes no HTTP client library would send.

`curl "http://127.0.0.1:8000/v1/communities/x/members?q=周"` sends 周 as raw UTF-8, which the HTTP
parser refuses in a URL: the server takes it as if percent-encoded. Requests the parser refuses
are answered with problem+json, like every other error.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from tests import pg
from tests.e2e.server import Server, running_server
from timebank.config import Settings

pytestmark = pytest.mark.slow

PROBLEM = "application/problem+json"


@dataclass
class Target:
    server: Server
    token: str
    slug: str


@pytest.fixture(scope="module")
async def target(server_url: str, settings: Settings) -> AsyncIterator[Target]:
    name, url = await pg.migrated_database(server_url, settings)
    token = "tb_raw_" + secrets.token_urlsafe(24)
    try:
        async with running_server(url, TIMEBANK_ADMIN_TOKEN=token) as server:
            admin = {"Authorization": f"Bearer {token}"}
            slug = "r-" + uuid.uuid4().hex[:10]
            async with httpx.AsyncClient(base_url=server.url) as http:
                made = await http.post("/v1/communities", headers=admin, json={"slug": slug, "name": "原始字节"})
                assert made.status_code == 201, made.text
                for person in ("周彦芳", "李明"):
                    body = {"display_name": person, "roles": ["volunteer"]}
                    member = await http.post(f"/v1/communities/{slug}/members", headers=admin, json=body)
                    assert member.status_code == 201, member.text
            yield Target(server, token, slug)
    finally:
        await pg.drop_database(server_url, name)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


def parse(raw: bytes) -> Answer:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    assert status_line.startswith("HTTP/1.1 "), raw[:200]
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return Answer(int(status_line[9:12]), headers, body)


async def exchange(server: Server, *parts: bytes) -> Answer:
    """Send the parts as separate writes (a request line may arrive in pieces); read one answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        for part in parts:
            writer.write(part)
            await writer.drain()
        return parse(await asyncio.wait_for(reader.read(), 30))
    finally:
        writer.close()


def get(target: Target, path: str) -> bytes:
    return (
        b"GET " + path.encode() + b" HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + target.token.encode()
        + b"\r\nConnection: close\r\n\r\n"
    )  # fmt: skip


def names(answer: Answer) -> list[str]:
    body = answer.json()
    assert isinstance(body, dict), body
    return [item["display_name"] for item in body["items"]]


async def test_raw_utf8_in_the_query_is_read_as_if_percent_encoded(target: Target) -> None:
    raw = await exchange(target.server, get(target, f"/v1/communities/{target.slug}/members?q=周"))
    assert raw.status == 200, raw.body
    encoded = await exchange(target.server, get(target, f"/v1/communities/{target.slug}/members?q=%E5%91%A8"))
    assert names(raw) == names(encoded) == ["周彦芳"]


async def test_a_request_line_in_pieces_splitting_a_character(target: Target) -> None:
    request = get(target, f"/v1/communities/{target.slug}/members?q=周彦")
    cut = request.index("周".encode()) + 1  # inside the three bytes of 周
    answer = await exchange(target.server, request[:5], request[5:cut], request[cut:])
    assert answer.status == 200, answer.body
    assert names(answer) == ["周彦芳"]


async def test_raw_utf8_on_a_kept_alive_connection(target: Target) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", target.server.port)
    try:
        for query in ("周", "李"):
            request = get(target, f"/v1/communities/{target.slug}/members?q={query}").replace(
                b"Connection: close\r\n", b""
            )
            writer.write(request)
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            answer = parse(head)
            body = await asyncio.wait_for(reader.readexactly(int(answer.headers["content-length"])), 30)
            answer.body = body
            assert answer.status == 200, body
            assert [name[0] for name in names(answer)] == [query]
    finally:
        writer.close()


async def test_raw_utf8_in_the_path_is_read_as_if_percent_encoded(target: Target) -> None:
    answer = await exchange(target.server, get(target, "/v1/communities/周"))
    assert answer.status == 404, answer.body
    assert answer.headers["content-type"].startswith(PROBLEM)
    body = answer.json()
    assert isinstance(body, dict)
    assert body["code"] == "not_found"


@pytest.mark.parametrize(
    ("request_bytes", "says"),
    [
        (b"GET /v1/me?q=a\x01b HTTP/1.1\r\nHost: t\r\n\r\n", "percent-encoded"),
        (b"GET /v1/me HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "not valid HTTP"),
        (b"GET /v1/me HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "not valid HTTP"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", "not valid HTTP"),  # TLS to the plain port
    ],
    ids=["control-character-in-query", "two-content-lengths", "bad-chunk", "tls-hello"],
)
async def test_malformed_requests_are_answered_with_problem_json(
    target: Target, request_bytes: bytes, says: str
) -> None:
    answer = await exchange(target.server, request_bytes)
    assert answer.status == 400, answer.body
    assert answer.headers["content-type"] == PROBLEM
    body = answer.json()
    assert isinstance(body, dict)
    assert body["code"] == "invalid_request"
    assert body["status"] == 400
    assert says in body["detail"]
    assert body["request_id"] == answer.headers["x-request-id"]
