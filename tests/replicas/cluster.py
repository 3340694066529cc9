"""A primary and a real streaming-replication standby of it, for the read replica tests.

The shared test server does not accept replication connections (its pg_hba.conf has no
`replication` line, and the tests must not change a server others use), so these tests start a
primary of their own with initdb and pg_ctl, as the unprivileged `postgres` user when run as root,
and make the standby with `pg_basebackup -R -X stream` from it, as an operator would.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.server import free_port
from tests.tools import missing_tool

INSTALL = "apt-get install postgresql (pg_basebackup, initdb and pg_ctl of the server's version)"
# Each step is bounded: a server that does not start in this time is a failure, not a wait.
STEP_TIMEOUT_SECONDS = 60
OS_USER = "postgres"


def server_programs() -> Path:
    """The folder of initdb, pg_ctl and pg_basebackup (Debian keeps them per version, off the PATH)."""
    pg_ctl = shutil.which("pg_ctl")
    candidates = [Path(pg_ctl).resolve().parent] if pg_ctl else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    found = [f for f in candidates if all((f / name).exists() for name in ("initdb", "pg_ctl", "pg_basebackup"))]
    if not found:
        missing_tool("PostgreSQL's initdb, pg_ctl and pg_basebackup", INSTALL)
    return found[0]


def _as_server_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run the command as the `postgres` user."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        if shutil.which("runuser") is None:
            missing_tool("runuser (to start PostgreSQL as an unprivileged user)", "apt-get install util-linux")
        try:
            pwd.getpwnam(OS_USER)
        except KeyError:
            missing_tool(f"the OS user {OS_USER!r} (to run PostgreSQL as)", "apt-get install postgresql")
        return ["runuser", "-u", OS_USER, "--", *command]
    return command


def _run(command: list[str]) -> None:
    done = subprocess.run(
        _as_server_user(command), capture_output=True, text=True, timeout=STEP_TIMEOUT_SECONDS, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


@dataclass
class Server:
    """One PostgreSQL of the pair: its data folder and port, started and stopped with pg_ctl."""

    programs: Path
    data: Path
    port: int
    sockets: Path

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url_of(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1"
        log = self.data.parent / f"{self.data.name}.log"
        try:
            _run([str(self.programs / "pg_ctl"), "-D", str(self.data), "-l", str(log), "-o", options, "-w",
                  "-t", str(STEP_TIMEOUT_SECONDS), "start"])  # fmt: skip
        except RuntimeError as exc:
            server_log = log.read_text(encoding="utf-8", errors="replace") if log.exists() else "(no log)"
            raise RuntimeError(f"{exc}\nserver log:\n{server_log[-4000:]}") from None

    def kill(self) -> None:
        """Stop at once, as a crash would (`-m immediate`: no shutdown checkpoint)."""
        _run([str(self.programs / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"])

    def stop_quietly(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):  # already stopped
            self.kill()


@dataclass
class Pair:
    primary: Server
    standby: Server


@contextmanager
def primary_and_standby(apply_delay_ms: int = 0) -> Iterator[Pair]:
    """Start a primary, back it up into a standby (`pg_basebackup -R`), start that; stop both after.

    `apply_delay_ms`: the standby shows each commit that much later (recovery_min_apply_delay), so a
    read right after a write finds it missing there for certain, not only on an unlucky timing.
    """
    programs = server_programs()
    _as_server_user([])  # skips (or fails in CI) here when there is no unprivileged user to run as
    root = Path(tempfile.mkdtemp(prefix="timebank-replicas-", dir="/tmp"))
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        shutil.chown(root, OS_USER, OS_USER)
    ports = {free_port()}
    while len(ports) < 2:
        ports.add(free_port())
    primary_port, standby_port = sorted(ports)
    primary = Server(programs, root / "primary", primary_port, root)
    standby = Server(programs, root / "standby", standby_port, root)
    try:
        # Trust on 127.0.0.1 for normal and replication connections (initdb's default lines with
        # --auth=trust); wal_level replica and WAL senders are PostgreSQL's defaults since 10.
        _run([str(programs / "initdb"), "-D", str(primary.data), "-U", "postgres", "--auth=trust", "-N",
              "-E", "UTF8", "--locale=C.UTF-8"])  # fmt: skip
        with (primary.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("wal_level = replica\nmax_wal_senders = 5\nhot_standby = on\nsynchronous_commit = on\n")
        primary.start()
        _run([str(programs / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
              "-D", str(standby.data), "-R", "-X", "stream", "-c", "fast", "-N"])  # fmt: skip
        if apply_delay_ms:
            with (standby.data / "postgresql.auto.conf").open("a", encoding="utf-8") as conf:
                conf.write(f"recovery_min_apply_delay = '{apply_delay_ms}ms'\n")
        standby.start()
        yield Pair(primary, standby)
    finally:
        standby.stop_quietly()
        primary.stop_quietly()
        shutil.rmtree(root, ignore_errors=True)
