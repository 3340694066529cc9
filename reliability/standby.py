"""A streaming-replication standby of the harness's own PostgreSQL, answering the service's reads.

The crash run attaches one: the service reads from it (TIMEBANK_READ_DATABASE_URL) while its
primary is killed and restarted under it, so the router's promises are tested where they are
hardest to keep. The standby is made as an operator would (`pg_basebackup -R -X stream`, with a
replication slot so that the primary keeps the WAL it has not yet received, even across a crash)
with the embedded server's own programs, of the primary's version, run as the same unprivileged
user. It runs on its own unix socket; `primary_conninfo` reconnects by itself after each crash.

After the run the service is stopped, the standby must replay everything the primary has, and the
ledger read on it must equal the primary's, with `timebank verify`'s checks passing on it too (the
`verify` command itself records its run, which a standby cannot). It must have answered reads
(counted from the service's /metrics at the end of each of its lives), and no answer may have been
a 5xx outside PostgreSQL's outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import subprocess
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import asyncpg

from reliability.checker import Ledger, load_ledger, own_write_reads
from reliability.figures import Fault, StandbyFigures
from reliability.history import Op
from reliability.processes import START_TIMEOUT_SECONDS, OwnPostgres, ServiceProcess
from reliability.violation import Violation

SLOT = "timebank_crash_standby"
# Generous, for a busy machine: a standby streaming normally replays within milliseconds.
CATCH_UP_TIMEOUT_SECONDS = 60.0
CATCH_UP_POLL_SECONDS = 0.05
# After a primary's crash the WAL receiver tries again this soon (PostgreSQL's default is 5 s).
STANDBY_SETTINGS = "hot_standby = on\nwal_retrieve_retry_interval = '250ms'\n"
# Ledger differences named in a violation; the rest are counted.
DIFFERENCES_SHOWN = 5
# After an outage the service may still hold a connection the crash broke: its first use answers 503.
OUTAGE_GRACE_SECONDS = 2.0


class OwnStandby(OwnPostgres):
    """A standby of an OwnPostgres in the same temporary directory, restartable like it."""

    def __init__(self, primary: OwnPostgres) -> None:
        super().__init__(primary.root)
        self.primary = primary
        self.pgdata = primary.root / "standby"
        self.socket_dir = self.pgdata
        self.log_path = primary.root / "standby.log"

    async def start(self) -> None:
        """Copy the running primary with pg_basebackup, then start the copy as a hot standby."""
        self.user = self.primary.user  # known once the primary has started: the same unprivileged user
        self.pgdata.mkdir(mode=0o700)
        if self.user is not None:
            owner = pwd.getpwnam(self.user)
            os.chown(self.pgdata, owner.pw_uid, owner.pw_gid)
        await self._base_backup()
        # The primary's socket is in its data directory: its lock file was copied, and would stop this one.
        for lock in self.pgdata.glob(".s.PGSQL.*.lock"):
            lock.unlink()
        with (self.pgdata / "postgresql.auto.conf").open("a", encoding="utf-8") as conf:
            conf.write(STANDBY_SETTINGS)
        await self._spawn()

    async def _base_backup(self) -> None:
        port = await _setting(self.primary.server_url, "port")
        programs = os.path.dirname(self._postgres())
        # Without the caller's PG* variables, which would point libpq elsewhere.
        environment = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        process = await asyncio.create_subprocess_exec(
            os.path.join(programs, "pg_basebackup"), "-h", str(self.primary.socket_dir), "-p", port,
            "-U", "postgres", "-D", str(self.pgdata), "-R", "-X", "stream", "-c", "fast", "-N",
            "--create-slot", "--slot", SLOT,
            env=environment, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            user=self.user, cwd=self.root,
        )  # fmt: skip
        try:
            output, _ = await asyncio.wait_for(process.communicate(), START_TIMEOUT_SECONDS)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise RuntimeError(f"pg_basebackup did not finish in {START_TIMEOUT_SECONDS} s") from None
        if process.returncode != 0:
            raise RuntimeError(f"pg_basebackup failed ({process.returncode}):\n{output.decode(errors='replace')}")


async def _setting(url: str, name: str) -> str:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        return str(await conn.fetchval("select current_setting($1)", name))
    finally:
        await conn.close()


async def _replay_position(url: str) -> int | None:
    """The standby's replay position, None while it does not answer."""
    with contextlib.suppress(OSError, asyncpg.PostgresError, TimeoutError):
        conn = await asyncpg.connect(url, timeout=2)
        try:
            lsn = await conn.fetchval("select pg_last_wal_replay_lsn()")
        finally:
            await conn.close()
        return None if lsn is None else int(lsn)
    return None


async def caught_up(primary_url: str, standby_url: str, timeout_seconds: float = CATCH_UP_TIMEOUT_SECONDS) -> float:
    """Wait until the standby has replayed the primary's WAL position of now; returns the seconds it
    took. Raises TimeoutError when it has not within the bound."""
    conn = await asyncpg.connect(primary_url, timeout=10)
    try:
        target = int(await conn.fetchval("select pg_current_wal_lsn()"))
    finally:
        await conn.close()
    loop = asyncio.get_running_loop()
    began = loop.time()
    last: int | None = None
    while loop.time() - began < timeout_seconds:
        last = await _replay_position(standby_url)
        if last is not None and last >= target:
            return loop.time() - began
        await asyncio.sleep(CATCH_UP_POLL_SECONDS)
    raise TimeoutError(f"replayed {last} of {target} after {timeout_seconds:g} s")


async def read_ledger(database_url: str) -> Ledger:
    conn = await asyncpg.connect(database_url, server_settings={"search_path": "timebank"})
    try:
        return await load_ledger(conn)
    finally:
        await conn.close()


def _differences(name: str, primary: dict[str, Any], standby: dict[str, Any]) -> list[str]:
    found = [f"{name} {key} only on the primary" for key in sorted(primary.keys() - standby.keys())]
    found += [f"{name} {key} only on the standby" for key in sorted(standby.keys() - primary.keys())]
    found += [
        f"{name} {key}: primary {primary[key]}, standby {standby[key]}"
        for key in sorted(primary.keys() & standby.keys())
        if primary[key] != standby[key]
    ]
    return found


def compare_ledgers(primary: Ledger, standby: Ledger) -> list[Violation]:
    """Everything the checker reads of the ledger must be the same on the standby; and verify's
    checks must pass there too."""
    differences: list[str] = []
    for part in fields(Ledger):
        if part.name in ("now", "verify_violations"):
            continue
        differences += _differences(part.name, getattr(primary, part.name), getattr(standby, part.name))
    violations = [
        Violation("standby_diverged", f"verify on the standby: {name}: {message}")
        for name, message in standby.verify_violations
    ]
    if differences:
        shown = "; ".join(differences[:DIFFERENCES_SHOWN])
        more = f" (and {len(differences) - DIFFERENCES_SHOWN} more)" if len(differences) > DIFFERENCES_SHOWN else ""
        violations.append(Violation("standby_diverged", f"{len(differences)} differences: {shown}{more}"))
    return violations


def unused(reads: Counter[str]) -> list[Violation]:
    """A standby that answered no read was not really attached: the run proved nothing about it."""
    if reads["standby"] > 0:
        return []
    return [Violation("standby_unused", f"the standby answered no read (reads by target: {dict(reads)})")]


def server_errors(ops: Sequence[Op], faults: Sequence[Fault]) -> tuple[int, list[Violation]]:
    """(answers 5xx, those outside every outage): a standby that cannot answer a read must never
    cost its caller a 5xx; only PostgreSQL's outage (from its kill until the service was ready
    again, and a short grace) may."""
    outages = [(f.at_seconds, f.until_seconds + OUTAGE_GRACE_SECONDS) for f in faults if f.until_seconds is not None]
    count = 0
    violations: list[Violation] = []
    for op in ops:
        for attempt in op.attempts:
            if attempt.status is None or attempt.status < 500:
                continue
            count += 1
            if not any(start <= attempt.finished and attempt.started <= end for start, end in outages):
                violations.append(
                    Violation(
                        "server_error",
                        f"{op.kind} {attempt.phase} answered {attempt.status} {attempt.code} at "
                        f"{attempt.started:.2f}-{attempt.finished:.2f} s, outside every outage",
                        op.op_id,
                    )
                )
    return count, violations


@dataclass
class AttachedStandby:
    """The scratch database on the primary and on its standby, and what the run found of the standby."""

    primary_url: str
    standby_url: str
    violations: list[Violation] = field(default_factory=list)
    # Reads the standby had answered when the primary was first killed: those after it prove that
    # it kept streaming (a standby left behind is taken out of use).
    reads_at_primary_crash: int | None = None

    async def note_primary_crash(self, service: ServiceProcess) -> None:
        if self.reads_at_primary_crash is None:
            await service.scrape_reads()
            self.reads_at_primary_crash = service.reads()["standby"]

    async def catch_up(self, moment: str) -> float | None:
        """Let the standby replay everything the primary has (a violation if it cannot within the
        bound); returns the seconds that took."""
        try:
            seconds = await caught_up(self.primary_url, self.standby_url)
        except TimeoutError as exc:
            self.violations.append(Violation("standby_behind", f"{moment}, the standby had not caught up: {exc}"))
            return None
        return seconds

    async def finish(self, ops: Sequence[Op], service: ServiceProcess, faults: Sequence[Fault]) -> StandbyFigures:
        """After the service is stopped: caught up, the same ledger, reads really answered by it, and
        no 5xx outside the outages."""
        await service.stop()  # its read counters are taken first; nothing writes from here on (jobs neither)
        after = await self.catch_up("after the run")
        primary = await read_ledger(self.primary_url)
        try:
            compared = compare_ledgers(primary, await read_ledger(self.standby_url))
        except (OSError, asyncpg.PostgresError) as exc:
            compared = [Violation("standby_diverged", f"the ledger could not be read on the standby: {exc!r}")]
        self.violations += compared
        reads = service.reads()
        self.violations += unused(reads)
        own, others_missing = own_write_reads(ops)
        errors, outside = server_errors(ops, faults)
        self.violations += outside
        after_crash = None if self.reads_at_primary_crash is None else reads["standby"] - self.reads_at_primary_crash
        return StandbyFigures(
            reads=dict(reads),
            reads_after_primary_crash=after_crash,
            lives=service.starts,
            own_write_reads=own,
            others_not_yet_replayed=others_missing,
            catch_up_seconds=after,
            server_errors=errors,
            transactions=len(primary.transactions),
            accounts=len(primary.accounts),
            consistent=not compared,
        )
