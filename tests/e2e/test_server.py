"""The real server process: start-up admin token, request logs, X-Request-ID, graceful SIGTERM."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid

import httpx
import pytest

from tests.e2e.server import Server, running_server, starting_server
from tests.eventually import eventually

pytestmark = pytest.mark.slow


async def test_admin_token_from_environment_survives_restart(fresh_db: str) -> None:
    token = "tb_e2e_" + uuid.uuid4().hex
    principals = []
    for _ in range(2):
        async with running_server(fresh_db, TIMEBANK_ADMIN_TOKEN=token) as server, httpx.AsyncClient() as client:
            me = await client.get(server.url + "/v1/me", headers={"Authorization": f"Bearer {token}"})
            assert me.status_code == 200, me.text
            assert me.json()["roles"] == ["admin"]
            principals.append(me.json()["principal_id"])
    assert principals[0] == principals[1]


async def test_one_json_log_line_per_request_without_tokens(fresh_db: str) -> None:
    token = "tb_e2e_" + uuid.uuid4().hex
    async with running_server(fresh_db, TIMEBANK_ADMIN_TOKEN=token) as server, httpx.AsyncClient() as client:
        me = await client.get(
            server.url + "/v1/me", headers={"Authorization": f"Bearer {token}", "X-Request-ID": "trace-me-42"}
        )
        assert me.headers["x-request-id"] == "trace-me-42"
        denied = await client.get(server.url + "/v1/me", headers={"Authorization": "Bearer tb_wrong_" + token})
        assert denied.status_code == 401
        minted = denied.headers["x-request-id"]
        assert len(minted) >= 16
        missing = await client.get(server.url + "/nowhere")
        assert missing.status_code == 404
        assert missing.headers["x-request-id"]
        server.terminate()
        await asyncio.wait_for(server.process.wait(), 30)
        log = server.log()
    assert token not in log
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    requests = [line for line in lines if line.get("event") == "request_handled"]
    ours = [line for line in requests if line.get("request_id") == "trace-me-42"]
    assert len(ours) == 1
    line = ours[0]
    assert line["route"] == "/v1/me"
    assert line["status"] == 200
    assert line["method"] == "GET"
    assert line["principal"] == json.loads(me.text)["principal_id"]
    assert isinstance(line["duration_ms"], float | int)
    assert line["timestamp"].endswith("Z")
    assert any(r["request_id"] == minted and r["status"] == 401 for r in requests)
    assert any(r["path"] == "/nowhere" and r["status"] == 404 for r in requests)
    # The server's own messages are JSON too.
    assert any(line.get("logger", "").startswith("uvicorn") for line in lines)


async def _slow_request(port: int, token: str, started: asyncio.Event, resume: asyncio.Event) -> bytes:
    """A POST whose body arrives in two parts: in flight from `started` until `resume`."""
    body = json.dumps({"slug": "slow-" + uuid.uuid4().hex[:8], "name": "慢"}).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /v1/communities HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
    )
    writer.write(body[:5])
    await writer.drain()
    started.set()
    await resume.wait()
    writer.write(body[5:])
    await writer.drain()
    response = await asyncio.wait_for(reader.read(), 30)
    writer.close()
    return response


async def _ready(client: httpx.AsyncClient, url: str) -> httpx.Response | None:
    try:
        return await client.get(url + "/ready")
    except httpx.TransportError:
        return None


async def _refuses_connections(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return True
    writer.close()
    return False


async def test_sigterm_drains_then_exits(fresh_db: str) -> None:
    token = "tb_e2e_" + uuid.uuid4().hex
    async with (
        running_server(fresh_db, TIMEBANK_ADMIN_TOKEN=token, TIMEBANK_SHUTDOWN_GRACE_SECONDS="2") as server,
        httpx.AsyncClient() as client,
    ):
        assert (await client.get(server.url + "/ready")).status_code == 200
        started, resume = asyncio.Event(), asyncio.Event()
        slow = asyncio.create_task(_slow_request(server.port, token, started, resume))
        await started.wait()
        server.terminate()
        # During the grace period /ready answers 503 (once the signal has been handled) ...
        ready = await eventually(lambda: _ready(client, server.url), lambda r: r is not None and r.status_code == 503)
        assert ready is not None
        assert ready.json()["code"] == "unavailable"
        # ... then the server stops accepting, while the request already in flight is finished.
        await eventually(lambda: _refuses_connections(server.port), what="the server to stop accepting")
        assert not slow.done()
        resume.set()
        response = await slow
        assert response.startswith(b"HTTP/1.1 201"), response[:200]
        assert await _exit_code(server) == 0, server.log()
        assert "Application shutdown complete" in server.log()


# Stopping takes the grace period and a drain; on a busy machine, with workers still starting, far more.
EXIT_TIMEOUT_SECONDS = 60.0


async def _exit_code(server: Server) -> int:
    """The server's exit code once it has stopped (bounded); on timeout, fail with its log."""
    try:
        return await asyncio.wait_for(server.process.wait(), EXIT_TIMEOUT_SECONDS)
    except TimeoutError:
        raise AssertionError(f"the server did not stop in {EXIT_TIMEOUT_SECONDS:g} s:\n{server.log()}") from None


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as listing:
        return [int(child) for child in listing.read().split()]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def test_worker_processes_share_the_port_and_stop_together(fresh_db: str) -> None:
    token = "tb_e2e_" + uuid.uuid4().hex
    env = {"TIMEBANK_ADMIN_TOKEN": token, "TIMEBANK_WORKERS": "2", "TIMEBANK_SHUTDOWN_GRACE_SECONDS": "0.2"}
    async with running_server(fresh_db, **env) as server, httpx.AsyncClient() as client:
        workers = _children(server.process.pid)
        assert len(workers) == 2
        headers = {"Authorization": f"Bearer {token}"}
        responses = await asyncio.gather(
            *(client.get(server.url + "/v1/communities", headers=headers) for _ in range(20))
        )
        assert [r.status_code for r in responses] == [200] * 20
        server.terminate()
        assert await _exit_code(server) == 0, server.log()
        assert not any(_alive(worker) for worker in workers)


async def test_workers_stopped_while_starting_exit_cleanly(fresh_db: str) -> None:
    """SIGTERM as soon as the workers are forked, while they are still building the app: each must
    exit 0 (the signal waits until its handler is in place), not die of the signal's default action."""
    async with starting_server(fresh_db, TIMEBANK_WORKERS="2", TIMEBANK_SHUTDOWN_GRACE_SECONDS="0.2") as server:
        workers = await eventually(
            lambda: _forked_workers(server), lambda found: len(found) == 2, what="two workers to be forked"
        )
        server.terminate()
        assert await _exit_code(server) == 0, server.log()
        assert not any(_alive(worker) for worker in workers)


async def _forked_workers(server: Server) -> list[int]:
    if server.process.returncode is not None:
        raise AssertionError(f"server exited early:\n{server.log()}")
    try:
        return _children(server.process.pid)
    except FileNotFoundError:
        return []


async def test_worker_processes_die_with_a_killed_parent(fresh_db: str) -> None:
    async with running_server(fresh_db, TIMEBANK_WORKERS="2") as server:
        workers = _children(server.process.pid)
        server.process.kill()
        await server.process.wait()
        await eventually(lambda: not any(_alive(worker) for worker in workers), what="the workers to die")
        # The port is free again for a restarted service.
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", server.port))
