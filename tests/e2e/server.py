"""Start the real `timebank serve` process for end-to-end tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    process: asyncio.subprocess.Process
    url: str
    port: int
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)


# Start-up imports the web stack and migrates: seconds on a busy machine, so the bound is generous.
START_TIMEOUT_SECONDS = 60.0


async def _started(server: Server) -> None:
    """Poll /health until it answers 200 (bounded); fail with the log if the process exits first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT_SECONDS
    async with httpx.AsyncClient() as client:
        while loop.time() < deadline:
            if server.process.returncode is not None:
                raise RuntimeError(f"server exited early:\n{server.log()}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(server.url + "/health", timeout=2)).status_code == 200:
                    return
            await asyncio.sleep(0.05)
    raise RuntimeError(f"server did not start in {START_TIMEOUT_SECONDS:g} s:\n{server.log()}")


@contextlib.asynccontextmanager
async def starting_server(database_url: str, **env: str) -> AsyncIterator[Server]:
    """Start `python -m timebank.cli serve` on a free port, enter the block at once, stop it at the end."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TIMEBANK_")}
    environment |= {"TIMEBANK_DATABASE_URL": database_url, "TIMEBANK_LOG_FORMAT": "json"} | env
    with tempfile.NamedTemporaryFile(prefix="timebank-serve-", suffix=".log", delete=False) as log_file:
        log_path = Path(log_file.name)
    with log_path.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "timebank.cli", "serve", "--port", str(port),
            env=environment, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = Server(process, f"http://127.0.0.1:{port}", port, log_path)
    try:
        yield server
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        log_path.unlink(missing_ok=True)


@contextlib.asynccontextmanager
async def running_server(database_url: str, **env: str) -> AsyncIterator[Server]:
    """Run `python -m timebank.cli serve` on a free port, from when /health answers until the block ends."""
    async with starting_server(database_url, **env) as server:
        await _started(server)
        yield server
