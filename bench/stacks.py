"""Server stacks: an app (timebank or the ceiling) under a server (uvicorn or granian) with N worker processes.

- uvicorn: timebank as `python -m timebank.cli serve` with TIMEBANK_WORKERS=N (timebank/server.py:
  its protocol class, graceful drain, forked workers sharing one socket); the ceiling through the
  same timebank/server.py (`python -m bench.ceiling`), so the two differ only in the app.
- granian: granian's own command line serving the app's ASGI factory (`timebank.asgi:app`,
  `bench.ceiling:app`) with `--workers N`, uvloop, no access log, HTTP/1.1 (what wrk speaks), a
  backlog of 2048 as timebank/server.py listens with.

A stack is ready when /ready answers 200 and every worker has connected to the database (counted
in pg_stat_activity: one subscribed revocation listener per timebank worker, one application name
per ceiling worker), all within START_TIMEOUT_SECONDS; it is stopped with SIGTERM to its process
group, then SIGKILL after STOP_TIMEOUT_SECONDS, and is gone when its workers' connections are.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import BinaryIO

import asyncpg
import httpx

from bench.ceiling import APPLICATION_NAME_PREFIX, DATABASE_URL_VARIABLE
from tests.e2e.server import free_port
from timebank.auth.revocations import LISTENER_NAME

SERVERS = ("uvicorn", "granian")
APPS = ("timebank", "ceiling")
# Starting imports the web stack in every worker: seconds on a busy machine, so the bounds are generous.
START_TIMEOUT_SECONDS = 90.0
STOP_TIMEOUT_SECONDS = 15.0
POLL_SECONDS = 0.1

# How many of an app's workers have connected to its database (each counted once).
CONNECTED_WORKERS = {
    "timebank": "select count(*) from pg_stat_activity where datname = current_database() and application_name = $1",
    "ceiling": "select count(distinct application_name) from pg_stat_activity"
    " where datname = current_database() and starts_with(application_name, $1)",
}
WORKER_MARK = {"timebank": LISTENER_NAME, "ceiling": APPLICATION_NAME_PREFIX}
FACTORY = {"timebank": "timebank.asgi:app", "ceiling": "bench.ceiling:app"}


@dataclass(frozen=True, order=True)
class Stack:
    """A server and how many worker processes it runs."""

    server: str
    workers: int

    @property
    def label(self) -> str:
        return f"{self.server} x{self.workers}"


def parse_stacks(servers: str, workers: str, cores: int) -> list[Stack]:
    """Every server x worker count asked for; `N` in `workers` means the machine's cores."""
    names = [s.strip() for s in servers.split(",") if s.strip()]
    unknown = sorted(set(names) - set(SERVERS))
    if unknown or not names:
        raise ValueError(f"--servers takes some of {','.join(SERVERS)}, not {servers!r}")
    counts: list[int] = []
    for item in (w.strip() for w in workers.split(",") if w.strip()):
        count = cores if item.upper() == "N" else int(item) if item.isdigit() else 0
        if not 1 <= count <= 64:
            raise ValueError(f"--workers takes counts from 1 to 64 or N (the cores, {cores}), not {item!r}")
        if count not in counts:
            counts.append(count)
    if not counts:
        raise ValueError("--workers needs at least one count")
    if "granian" in names and find_spec("granian") is None:
        raise ValueError("granian is not installed: pip install -e '.[bench]'")
    return [Stack(server, count) for server in dict.fromkeys(names) for count in counts]


def command(stack: Stack, app: str, port: int) -> list[str]:
    """The command that serves `app` under `stack` on 127.0.0.1:`port`."""
    if stack.server == "granian":
        return [
            sys.executable, "-m", "granian", "--interface", "asgi", "--factory", "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(stack.workers), "--loop", "uvloop", "--http", "1",
            "--no-access-log", "--log-level", "warning", "--backlog", "2048", FACTORY[app],
        ]  # fmt: skip
    if app == "timebank":
        return [sys.executable, "-m", "timebank.cli", "serve", "--port", str(port), "--no-migrate"]
    return [sys.executable, "-m", "bench.ceiling", "--port", str(port), "--workers", str(stack.workers)]


@dataclass
class Running:
    """A started stack: its top process (the sampler follows its children), URL and log."""

    stack: Stack
    app: str
    process: asyncio.subprocess.Process
    url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


async def connected_workers(app: str, database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        count: int = await conn.fetchval(CONNECTED_WORKERS[app], WORKER_MARK[app])
    finally:
        await conn.close()
    return count


async def _ready(running: Running, database_url: str) -> None:
    """Poll /ready, then the database, until every worker is in (bounded); fail with the log otherwise."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + START_TIMEOUT_SECONDS
    answered = False
    async with httpx.AsyncClient() as client:
        while loop.time() < deadline:
            if running.process.returncode is not None:
                raise RuntimeError(f"{running.app} under {running.stack.label} exited early:\n{running.log()[-3000:]}")
            if not answered:
                with contextlib.suppress(httpx.TransportError):
                    answered = (await client.get(running.url + "/ready", timeout=2)).status_code == 200
            if answered and await connected_workers(running.app, database_url) >= running.stack.workers:
                return
            await asyncio.sleep(POLL_SECONDS)
    what = f"{running.app} under {running.stack.label}"
    raise RuntimeError(f"{what} was not ready in {START_TIMEOUT_SECONDS:g} s:\n{running.log()[-3000:]}")


async def _stop(running: Running, database_url: str) -> None:
    """SIGTERM to the whole process group, SIGKILL if it lingers, then wait for its connections to go."""
    process = running.process
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(process.wait(), STOP_TIMEOUT_SECONDS)
    with contextlib.suppress(ProcessLookupError):  # workers a server left behind, if any
        os.killpg(process.pid, signal.SIGKILL)
    await process.wait()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STOP_TIMEOUT_SECONDS
    while loop.time() < deadline:
        if await connected_workers(running.app, database_url) == 0:
            return
        await asyncio.sleep(POLL_SECONDS)


def _new_log(app: str) -> tuple[Path, BinaryIO]:
    """A file for the server's output (stdout and stderr), shown when it fails to start."""
    with tempfile.NamedTemporaryFile(prefix=f"bench-{app}-", suffix=".log", delete=False) as log_file:
        path = Path(log_file.name)
    return path, path.open("wb")


@contextlib.asynccontextmanager
async def running_stack(stack: Stack, app: str, database_url: str, env: dict[str, str]) -> AsyncIterator[Running]:
    """Serve `app` on `database_url` under `stack`, from when every worker is ready until the block ends.

    `env` is the TIMEBANK_* settings both apps read (log level, pool size and any --server-env).
    """
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TIMEBANK_")}
    environment |= {"TIMEBANK_LOG_FORMAT": "json"} | env | {"TIMEBANK_WORKERS": str(stack.workers)}
    environment["TIMEBANK_DATABASE_URL" if app == "timebank" else DATABASE_URL_VARIABLE] = database_url
    log_path, sink = _new_log(app)
    with sink:
        process = await asyncio.create_subprocess_exec(
            *command(stack, app, port), env=environment, stdout=sink, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped whole, workers included
        )  # fmt: skip
    running = Running(stack, app, process, f"http://127.0.0.1:{port}", log_path)
    try:
        await _ready(running, database_url)
        yield running
    finally:
        await _stop(running, database_url)
        log_path.unlink(missing_ok=True)


def describe(stacks: Sequence[Stack]) -> str:
    return ", ".join(s.label for s in stacks)
