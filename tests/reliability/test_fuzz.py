"""Hostile input against the real server process: the schemathesis fuzzer, and what it cannot generate.

`python -m reliability.fuzz` runs here twice: a fast run of 300 requests in the default run and the
full run of 2,000 behind `--reliability-long`. Either must find no violation (no 5xx, every answer as
the schema documents it, nothing written by a refused request).

The hand-written cases below fill what tests/api/test_validation.py (in-process) leaves out: they go
through uvicorn and its HTTP parser, and cover every write route rather than one: extreme timestamps
in every time filter, integer edges (0, -1, 2^31, 2^63, fractions) in every amount and policy field,
wrong content types on every write route, very long and very many headers, invalid UTF-8 and NUL in
headers, paths and query strings, and a duplicated Authorization header.
"""

from __future__ import annotations

import asyncio
import decimal
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests import pg
from tests.e2e.server import Server, running_server
from timebank.config import Settings

pytestmark = pytest.mark.slow  # started first (tests/conftest.py), so the workers finish together

ROOT = Path(__file__).resolve().parents[2]
PROBLEM = "application/problem+json"
SERVICE_DATE = "2026-11-01"


# --- the fuzzer -----------------------------------------------------------------------------------


def run_fuzz(server_url: str, requests: int, seed: int, report: Path, timeout: float) -> dict[str, Any]:
    command = [
        sys.executable, "-m", "reliability.fuzz", "--requests", str(requests), "--seed", str(seed),
        "--database-url", server_url, "--report", str(report),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)
    output = done.stdout[-6000:] + done.stderr[-3000:]
    assert report.exists(), output
    figures: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
    assert done.returncode == (1 if figures["violations"] else 0), output
    assert "violations found:" in done.stdout, output
    figures["output"] = output
    return figures


def assert_clean(figures: dict[str, Any], requests: int) -> None:
    output = figures["output"]
    assert figures["requests"] == requests, output
    assert figures["operations_run"] == figures["operations"], output
    assert figures["operations"] >= 26, output
    assert figures["negative"] > requests // 3, output
    assert figures["writes_accepted"] > 0, output
    # Fuzzing must get past the rules too: accepted writes that really moved hours.
    assert figures["hours_moved"] > 0, output
    assert figures["writes_refused"] > 0, output
    assert figures["server_errors"] == 0, output
    assert figures["violations"] == 0, output


def test_fuzz_fast(server_url: str, tmp_path: Path) -> None:
    figures = run_fuzz(server_url, 300, 20261127, tmp_path / "fuzz.json", timeout=240)
    assert_clean(figures, 300)


@pytest.mark.long
def test_fuzz_full(server_url: str, tmp_path: Path) -> None:
    figures = run_fuzz(server_url, 2000, 7, tmp_path / "fuzz.json", timeout=900)
    assert_clean(figures, 2000)
    assert figures["replays"] > 0, figures["output"]
    # Every operation, the services' among them, was sent by every caller kind (admin, staff,
    # auditors, volunteer, resident, another community's coordinator, no token, an unknown token).
    assert figures["roles_missing"] == {}, figures["output"]
    assert any("/v1/service-requests" in op for op in figures["by_operation"]), figures["output"]


# --- a real server for the hand-written cases -----------------------------------------------------


@dataclass
class Target:
    server: Server
    db: asyncpg.Connection  # the owner, looking behind the API
    admin: dict[str, str]
    slug: str
    community_id: str
    member: dict[str, Any]  # volunteer + resident, credited
    hold_id: str
    transaction_id: str


@pytest.fixture(scope="module")
async def target(server_url: str, settings: Settings, admin_token: str) -> AsyncIterator[Target]:
    """The real server on a database of this module's own (its start-up expiry run touches no one else's holds)."""
    name, url = await pg.migrated_database(server_url, settings)
    env = {"TIMEBANK_ADMIN_TOKEN": admin_token, "TIMEBANK_AUTH_FAILURES_PER_MINUTE": "100000"}
    try:
        async with running_server(url, **env) as server, httpx.AsyncClient(base_url=server.url) as client:
            admin = {"Authorization": f"Bearer {admin_token}"}

            async def write(path: str, body: dict[str, Any]) -> dict[str, Any]:
                headers = admin | {"Idempotency-Key": uuid.uuid4().hex}
                response = await client.post(path, headers=headers, json=body)
                assert response.status_code in (200, 201), response.text
                data: dict[str, Any] = response.json()
                return data

            slug = "h-" + uuid.uuid4().hex[:12]
            community = await write("/v1/communities", {"slug": slug, "name": "边界社区"})
            member = await write(
                f"/v1/communities/{slug}/members", {"display_name": "边界", "roles": ["volunteer", "resident"]}
            )
            credit = await write(
                "/v1/credits", {"member_id": member["id"], "minutes": 600, "service_date": SERVICE_DATE}
            )
            hold = await write("/v1/holds", {"member_id": member["id"], "minutes": 60})
            db = await asyncpg.connect(url, server_settings={"search_path": "timebank"})
            try:
                yield Target(server, db, admin, slug, community["id"], member, hold["id"], credit["id"])
            finally:
                await db.close()
            assert server.process.returncode is None, server.log()[-3000:]
            errors = [line for line in server.log().splitlines() if '"level": "error"' in line]
            assert not errors, errors[:3]
    finally:
        await pg.drop_database(server_url, name)


@pytest.fixture
async def http(target: Target) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=target.server.url, timeout=30) as client:
        yield client


async def state(t: Target) -> tuple[Any, ...]:
    """What a request could have written in the community (audit events of refusals aside)."""
    row = await t.db.fetchrow(
        """
        select (select md5(string_agg(a::text, ',' order by a.id)) from accounts a where community_id = $1),
               (select md5(string_agg(c::text, ',')) from communities c where id = $1),
               (select count(*) from members where community_id = $1),
               (select count(*) from transactions where community_id = $1),
               (select count(*) from holds where community_id = $1),
               (select count(*) from hold_resolutions r join holds h on h.id = r.hold_id where h.community_id = $1),
               (select count(*) from tokens),
               (select count(*) from communities),
               (select count(*) from audit_events where community_id = $1
                                                   and action not in ('write.rejected', 'request.denied'))
        """,
        uuid.UUID(t.community_id),
    )
    assert row is not None
    return tuple(row)


def assert_problem(response: httpx.Response, statuses: set[int], codes: set[str]) -> dict[str, Any]:
    assert response.status_code in statuses, (response.status_code, response.text)
    assert response.headers["content-type"].split(";")[0] == PROBLEM, response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == response.status_code
    assert body["code"] in codes, body
    return body


def write_routes(t: Target) -> list[tuple[str, str, dict[str, Any], bool]]:
    """(method, path, a valid body, takes an Idempotency-Key) for every route that writes."""
    m = t.member["id"]
    return [
        ("POST", "/v1/communities", {"slug": "w-" + uuid.uuid4().hex[:10], "name": "新"}, False),
        ("PUT", f"/v1/communities/{t.slug}/policy", {"unit_minutes": 15}, False),
        ("POST", f"/v1/communities/{t.slug}/members", {"display_name": "新人", "roles": ["volunteer"]}, False),
        ("POST", f"/v1/members/{m}/tokens", {}, False),
        ("POST", "/v1/credits", {"member_id": m, "minutes": 15, "service_date": SERVICE_DATE}, True),
        ("POST", "/v1/redemptions", {"member_id": m, "minutes": 15}, True),
        ("POST", "/v1/transfers", {"from_member_id": m, "to_pool": True, "minutes": 15}, True),
        ("POST", "/v1/pool-grants", {"member_id": m, "minutes": 15}, True),
        ("POST", f"/v1/transactions/{t.transaction_id}/reversal", {"reason": "错"}, True),
        ("POST", "/v1/holds", {"member_id": m, "minutes": 15}, True),
        ("POST", f"/v1/holds/{t.hold_id}/capture", {"minutes": 15}, True),
        ("POST", f"/v1/holds/{t.hold_id}/release", {}, True),
    ]


# --- timestamps at the edge of the calendar -------------------------------------------------------

# In range as written, out of range once turned into UTC (year 0, year 10000).
EDGE_TIMES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]


@pytest.mark.parametrize("moment", EDGE_TIMES)
async def test_time_filters_at_the_calendar_edge_never_500(
    target: Target, http: httpx.AsyncClient, moment: str
) -> None:
    account = target.member["account_id"]
    queries = [
        (f"/v1/communities/{target.slug}/transactions", "from"),
        (f"/v1/communities/{target.slug}/transactions", "to"),
        (f"/v1/accounts/{account}/entries", "from"),
        (f"/v1/accounts/{account}/entries", "to"),
        (f"/v1/accounts/{account}/balance", "as_of"),
        ("/v1/audit-events", "after"),
    ]
    answers = {}
    for path, name in queries:
        response = await http.get(path, headers=target.admin, params={name: moment})
        answers[f"{path.split('/')[-1]}?{name}"] = response.status_code
        if response.status_code != 200:
            assert_problem(response, {400}, {"invalid_request"})
    assert all(status in (200, 400) for status in answers.values()), answers


async def test_hold_expiry_at_the_calendar_edge_is_refused(target: Target, http: httpx.AsyncClient) -> None:
    before = await state(target)
    for moment in EDGE_TIMES:
        body = {"member_id": target.member["id"], "minutes": 15, "expires_at": moment}
        headers = target.admin | {"Idempotency-Key": uuid.uuid4().hex}
        response = await http.post("/v1/holds", headers=headers, json=body)
        assert_problem(response, {400}, {"invalid_request"})
    assert await state(target) == before


# --- integer edges in every amount and policy field -----------------------------------------------

HUGE = [2**31, 2**63 - 1, 2**63, 2**64]


@pytest.mark.parametrize(
    "raw",
    ["0", "-1", "-0", str(2**31), str(2**63 - 1), str(2**63), str(2**64), "1.5", "0.0", "-1.5e1", "1e19", "-15"],
)
async def test_amount_edges_on_every_route(target: Target, http: httpx.AsyncClient, raw: str) -> None:
    """Every `minutes`: 400 invalid_request (not an integer) or 422 amount_out_of_range; never a write.

    A number with a fraction or exponent that equals an integer (0.0, -1.5e1) is that integer, as JSON
    Schema says."""
    m = target.member["id"]
    routes = [
        ("/v1/credits", f'{{"member_id": "{m}", "service_date": "{SERVICE_DATE}", "minutes": {raw}}}'),
        ("/v1/redemptions", f'{{"member_id": "{m}", "minutes": {raw}}}'),
        ("/v1/transfers", f'{{"from_member_id": "{m}", "to_pool": true, "minutes": {raw}}}'),
        ("/v1/pool-grants", f'{{"member_id": "{m}", "minutes": {raw}}}'),
        ("/v1/holds", f'{{"member_id": "{m}", "minutes": {raw}}}'),
        (f"/v1/holds/{target.hold_id}/capture", f'{{"minutes": {raw}}}'),
    ]
    before = await state(target)
    integral = decimal.Decimal(raw) == decimal.Decimal(raw).to_integral_value()
    for path, body in routes:
        headers = target.admin | {"Idempotency-Key": uuid.uuid4().hex, "Content-Type": "application/json"}
        response = await http.post(path, headers=headers, content=body.encode())
        expected = {"amount_out_of_range", "capture_exceeds_hold"} if integral else {"invalid_request"}
        if integral and abs(int(decimal.Decimal(raw))) >= 2**63:
            expected.add("invalid_request")  # beyond a 64-bit integer: refused by the parser
        problem = assert_problem(response, {400, 422}, expected)
        assert (problem["status"] == 400) == (problem["code"] == "invalid_request"), problem
    assert await state(target) == before


@pytest.mark.parametrize(
    "field", ["unit_minutes", "max_transaction_minutes", "max_balance_minutes", "overdraft_minutes"]
)
@pytest.mark.parametrize("raw", ["-1", str(2**31), str(2**63), str(2**64), "1.5", "-1.0", "2.5e9"])
async def test_policy_edges_are_invalid_request(target: Target, http: httpx.AsyncClient, field: str, raw: str) -> None:
    before = await state(target)
    headers = target.admin | {"Content-Type": "application/json"}
    put = await http.put(
        f"/v1/communities/{target.slug}/policy", headers=headers, content=f'{{"{field}": {raw}}}'.encode()
    )
    assert [e["field"] for e in assert_problem(put, {400}, {"invalid_request"})["errors"]] == [f"$.{field}"]
    slug = "e-" + uuid.uuid4().hex[:10]
    created = await http.post(
        "/v1/communities",
        headers=headers,
        content=f'{{"slug": "{slug}", "name": "x", "policy": {{"{field}": {raw}}}}}'.encode(),
    )
    assert_problem(created, {400}, {"invalid_request"})
    assert (await http.get(f"/v1/communities/{slug}", headers=target.admin)).status_code == 404
    assert await state(target) == before


# --- content types on every write route -----------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=b", "application/xml", None],
    ids=["text", "form", "multipart", "xml", "none"],
)
async def test_wrong_content_type_on_every_write_route(
    target: Target, http: httpx.AsyncClient, content_type: str | None
) -> None:
    before = await state(target)
    answers = {}
    for method, path, body, keyed in write_routes(target):
        headers = dict(target.admin)
        if keyed:
            headers["Idempotency-Key"] = uuid.uuid4().hex
        request = http.build_request(method, path, headers=headers, content=json.dumps(body).encode())
        if content_type is None:
            request.headers.pop("content-type", None)
        else:
            request.headers["content-type"] = content_type
        response = await http.send(request)
        answers[f"{method} {path}"] = response.status_code
        if path.endswith("/tokens"):
            # Takes no body at all: a body of any type is ignored or refused, never acted on as JSON.
            assert response.status_code in (201, 400, 415), response.text
            continue
        assert_problem(response, {400, 415}, {"invalid_request", "unsupported_media_type"})
    after = await state(target)
    # The token route may issue a token (it reads no body); nothing else may change.
    assert after[:6] == before[:6], answers
    assert after[7] == before[7], answers


# --- headers: size, count, bytes and duplicates ---------------------------------------------------


async def test_very_long_and_very_many_headers_never_5xx(target: Target, http: httpx.AsyncClient) -> None:
    cases: list[tuple[str, dict[str, str], set[int]]] = [
        ("64 KiB header", target.admin | {"X-Filler": "x" * 65_536}, {200, 400, 431}),
        ("1 MiB header", target.admin | {"X-Filler": "x" * 1_048_576}, {200, 400, 413, 431}),
        ("500 headers", target.admin | {f"X-H{i}": "y" for i in range(500)}, {200, 400, 431}),
        ("16 KiB token", {"Authorization": "Bearer " + "t" * 16_384}, {401}),
        ("8 KiB request id", target.admin | {"X-Request-ID": "r" * 8192}, {200}),
    ]
    for name, headers, allowed in cases:
        try:
            response = await http.get("/v1/me", headers=headers)
        except httpx.TransportError:
            status = None  # the parser may close the connection; the server must live on
        else:
            status = response.status_code
            if status >= 400:
                assert response.status_code < 500, (name, response.text[:300])
        assert status is None or status in allowed, (name, status)
        alive = await http.get("/health")
        assert alive.status_code == 200, name
    long_id = await http.get("/v1/me", headers=target.admin | {"X-Request-ID": "r" * 8192})
    assert len(long_id.headers["x-request-id"]) <= 200, "an over-long request id is echoed back"


@pytest.mark.parametrize("length", [201, 8192, 65_536])
async def test_very_long_idempotency_keys_are_refused(target: Target, http: httpx.AsyncClient, length: int) -> None:
    before = await state(target)
    for method, path, body, keyed in write_routes(target):
        if not keyed:
            continue
        headers = target.admin | {"Idempotency-Key": "k" * length}
        response = await http.request(method, path, headers=headers, json=body)
        assert_problem(response, {400}, {"invalid_request"})
    assert await state(target) == before


async def raw_request(server: Server, head: bytes, body: bytes = b"") -> bytes:
    """Send bytes as they are (no client library would) and read the whole answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(head + b"Connection: close\r\n\r\n" + body)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 15)
    finally:
        writer.close()


def status_of(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    return int(answer[9:12])


async def test_invalid_bytes_in_headers_paths_and_queries_never_5xx(target: Target) -> None:
    token = target.admin["Authorization"].encode()
    key = uuid.uuid4().hex.encode()
    credit = json.dumps({"member_id": target.member["id"], "minutes": 15, "service_date": SERVICE_DATE}).encode()

    def post(headers: bytes) -> bytes:
        return (
            b"POST /v1/credits HTTP/1.1\r\nHost: t\r\nAuthorization: " + token + b"\r\n"
            b"Content-Type: application/json\r\nContent-Length: " + str(len(credit)).encode() + b"\r\n" + headers
        )

    before = await state(target)
    cases: list[tuple[str, bytes, bytes, set[int]]] = [
        ("token of invalid utf-8", b"GET /v1/me HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \xff\xfe\r\n", b"", {401}),
        ("NUL in token", b"GET /v1/me HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer a\x00b\r\n", b"", {400, 401}),
        ("key of invalid utf-8", post(b"Idempotency-Key: \xff\xfe\r\n"), credit, {400}),
        ("NUL in key", post(b"Idempotency-Key: a\x00b\r\n"), credit, {400}),
        ("two keys", post(b"Idempotency-Key: " + key + b"\r\nIdempotency-Key: x" + key + b"\r\n"), credit, {400}),
        ("two lengths", post(b"Content-Length: 3\r\nIdempotency-Key: " + key + b"\r\n"), credit, {400}),
        ("raw 0xff in path", b"GET /v1/communities/\xff HTTP/1.1\r\nHost: t\r\nAuthorization: " + token + b"\r\n",
         b"", {400, 404}),
        ("%FF in path", b"GET /v1/members/%FF%FE HTTP/1.1\r\nHost: t\r\nAuthorization: " + token + b"\r\n",
         b"", {400, 404}),
        ("%00 in path", b"GET /v1/communities/a%00b HTTP/1.1\r\nHost: t\r\nAuthorization: " + token + b"\r\n",
         b"", {400, 404}),
        ("%FF in query", f"GET /v1/communities/{target.slug}/members?q=%FF%FE HTTP/1.1\r\nHost: t\r\n".encode()
         + b"Authorization: " + token + b"\r\n", b"", {200, 400}),
        ("%00 in query", b"GET /v1/audit-events?action=a%00b HTTP/1.1\r\nHost: t\r\nAuthorization: " + token
         + b"\r\n", b"", {400}),
        ("invalid utf-8 request id", b"GET /v1/me HTTP/1.1\r\nHost: t\r\nX-Request-ID: \xff\r\nAuthorization: "
         + token + b"\r\n", b"", {200}),
    ]  # fmt: skip
    answers = {}
    for name, head, body, _ in cases:
        answer = await raw_request(target.server, head, body)
        answers[name] = status_of(answer)
    assert all(answers[name] in allowed for name, _, _, allowed in cases), answers
    assert await state(target) == before


async def test_two_authorization_headers_are_refused(target: Target, http: httpx.AsyncClient) -> None:
    """Proxies and frameworks disagree on which of two credentials counts: like two Idempotency-Keys, refuse."""
    issued = await http.post(f"/v1/members/{target.member['id']}/tokens", headers=target.admin)
    assert issued.status_code == 201, issued.text
    member = f"Bearer {issued.json()['token']}"
    before = await state(target)
    for first, second in ((member, target.admin["Authorization"]), (target.admin["Authorization"], member)):
        response = await http.get("/v1/me", headers=[("Authorization", first), ("Authorization", second)])
        assert_problem(response, {400, 401}, {"invalid_request", "unauthenticated"})
        slug = "d-" + uuid.uuid4().hex[:10]
        created = await http.post(
            "/v1/communities",
            headers=[("Authorization", first), ("Authorization", second)],
            json={"slug": slug, "name": "两个令牌"},
        )
        assert_problem(created, {400, 401}, {"invalid_request", "unauthenticated"})
    assert await state(target) == before
