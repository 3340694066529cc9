"""bench/wrk/workload.lua's MODE=get, against a tiny recording server: what wrk sends."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from bench.load import run_wrk
from tests.tools import missing_tool


class Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as wrk expects
    seen: ClassVar[set[tuple[str, str | None]]] = set()  # (path, Authorization) of every request

    def do_GET(self) -> None:
        Recorder.seen.add((self.path, self.headers.get("Authorization")))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[str]:
    if shutil.which("wrk") is None:
        missing_tool("wrk", "apt-get install -y wrk")
    Recorder.seen = set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


async def test_get_sends_the_token_of_each_path_and_none_for_a_public_one(recorder: str) -> None:
    """Workload k asks its public consistency proofs as a client would, with no Authorization header."""
    rows = [("/v1/transactions/1/proof", "tb_secret"), ("/v1/log/consistency?first=1&second=2", "-")]
    result = await run_wrk(recorder, "get", rows, connections=2, threads=1, duration=1, run_id="t", status_codes=True)
    assert result.errors == 0
    assert Recorder.seen == {
        ("/v1/transactions/1/proof", "Bearer tb_secret"),
        ("/v1/log/consistency?first=1&second=2", None),
    }
