"""Commands on a database that is not (fully) migrated, missing or unreachable: one clear line, exit 2.

`timebank verify` once printed an asyncpg traceback ("another operation is in progress") in about
one run of eight on an unmigrated database: its parallel checks were not cancelled and awaited
before the cleanup's rollback. These tests run it many times, in-process through the CLI's entry
point (fast, the very code path of the console script), and call the checks directly too.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import socket
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import TextIO
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from tests import pg
from timebank import cli
from timebank.ledger.verify import verify

RUNS = 50


@pytest.fixture
async def empty_db(server_url: str) -> AsyncIterator[str]:
    """The owner URL of a database that exists but was never migrated."""
    name = "timebank_test_empty_" + uuid.uuid4().hex[:8]
    url = await pg.create_database(server_url, name)
    yield url
    await pg.drop_database(server_url, name)


@pytest.fixture
def cli_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No TIMEBANK_* settings but the ones a test sets. main() would also configure the process's
    logging to write to the stderr a test captures, for every later test: not here."""
    for name in [name for name in os.environ if name.startswith("TIMEBANK_")]:
        monkeypatch.delenv(name)
    monkeypatch.setattr(cli, "configure_logging", lambda settings: None)


class ThreadOutput(io.StringIO):
    """Keeps what one thread writes; passes on what others write (the session app's jobs log from
    their own thread while a command runs, and sys.stdout is the whole process's)."""

    def __init__(self, passthrough: TextIO) -> None:
        super().__init__()
        self.passthrough = passthrough
        self.owner: int | None = None

    def write(self, text: str) -> int:
        if threading.get_ident() == self.owner:
            return super().write(text)
        return self.passthrough.write(text)


async def run_cli(*argv: str) -> tuple[int, str, str]:
    """`timebank ARGV` in this process (in a thread: main() runs its own event loop); answers the
    exit code and what that thread printed."""
    out, err = ThreadOutput(sys.stdout), ThreadOutput(sys.stderr)

    def command() -> int:
        out.owner = err.owner = threading.get_ident()
        return cli.main(list(argv))

    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = await asyncio.to_thread(command)
    return code, out.getvalue(), err.getvalue()


def assert_told_to_migrate(code: int, out: str, err: str, url: str) -> None:
    assert code == 2, err
    assert out == ""
    assert "Traceback" not in err
    assert "another operation" not in err
    assert "is not migrated: run `timebank migrate`" in err, err
    assert f"timebank: database {cli.redacted(url)} (TIMEBANK_DATABASE_URL)" in err, err


@pytest.mark.usefixtures("cli_environment")
async def test_verify_on_an_unmigrated_database(empty_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIMEBANK_DATABASE_URL", empty_db)
    for _ in range(RUNS):
        code, out, err = await run_cli("verify", "--jobs", "4")
        assert_told_to_migrate(code, out, err, empty_db)
        assert f"the database {cli.redacted(empty_db)} is not migrated" in err


@pytest.mark.usefixtures("cli_environment")
async def test_verify_whose_checks_meet_no_schema_cleans_up_and_says_migrate(
    empty_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Past the migration check (as when the schema is dropped while verify starts): the checks
    # themselves fail on every connection at once, which is where the traceback came from.
    async def unchecked(self: cli.Database) -> str:
        return self.url()

    monkeypatch.setattr(cli.Database, "require_migrated", unchecked)
    monkeypatch.setenv("TIMEBANK_DATABASE_URL", empty_db)
    for _ in range(RUNS):
        code, out, err = await run_cli("verify", "--jobs", "4")
        assert_told_to_migrate(code, out, err, empty_db)


async def test_failing_checks_are_cancelled_and_awaited_before_the_rollback(empty_db: str) -> None:
    connections = [await asyncpg.connect(empty_db) for _ in range(4)]
    try:
        for _ in range(RUNS):
            # The check that fails first is reported; none is still running on its connection.
            with pytest.raises((asyncpg.UndefinedTableError, asyncpg.UndefinedFunctionError)):
                await verify(connections[0], None, connections[1:])
            for conn in connections:
                assert not conn.is_in_transaction()
                assert await conn.fetchval("select 1") == 1
    finally:
        for conn in connections:
            await conn.close()


@pytest.mark.usefixtures("cli_environment")
@pytest.mark.parametrize(
    "command",
    [
        ["token", "create", "--admin"],
        ["token", "create", "--auditor"],
        ["token", "create", "--member", str(uuid.UUID(int=1))],
        ["demo"],
        ["serve", "--no-migrate", "--port", "1"],
    ],
    ids=lambda command: "-".join(part for part in command if not part[0].isdigit()),
)
async def test_commands_needing_a_migrated_database_say_so(
    empty_db: str, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setenv("TIMEBANK_DATABASE_URL", empty_db)
    code, out, err = await run_cli(*command)
    assert_told_to_migrate(code, out, err, empty_db)


@pytest.mark.usefixtures("cli_environment")
async def test_a_database_migrated_by_an_older_version_is_refused_too(
    fresh_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = await asyncpg.connect(fresh_db)
    try:
        newest = await owner.fetchval("select max(version) from timebank.schema_migrations")
        await owner.execute("delete from timebank.schema_migrations where version = $1", newest)
    finally:
        await owner.close()
    monkeypatch.setenv("TIMEBANK_DATABASE_URL", fresh_db)
    for command in (["verify"], ["token", "create", "--admin"]):
        code, out, err = await run_cli(*command)
        assert_told_to_migrate(code, out, err, fresh_db)
        assert newest in err


@pytest.mark.usefixtures("cli_environment")
async def test_a_migrated_database_is_named_and_the_token_alone_is_on_stdout(
    fresh_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A password the (trusting) test server ignores: it must not be shown.
    parts = urlsplit(fresh_db)
    if parts.password is None and parts.username:
        fresh_db_with_password = urlunsplit(parts._replace(netloc=parts.netloc.replace("@", ":hunter2@", 1)))
        monkeypatch.setenv("TIMEBANK_DATABASE_URL", fresh_db_with_password)
    else:
        monkeypatch.setenv("TIMEBANK_DATABASE_URL", fresh_db)
    named = f"timebank: database {cli.redacted(fresh_db)} (TIMEBANK_DATABASE_URL)\n"
    code, out, err = await run_cli("token", "create", "--admin")
    assert code == 0, err
    assert out.startswith("tb_")
    assert out.count("\n") == 1
    assert named in err
    assert "hunter2" not in out + err
    code, out, err = await run_cli("verify")
    assert code == 0, err
    assert named in err


@pytest.mark.usefixtures("cli_environment")
@pytest.mark.parametrize("command", [["verify"], ["migrate"], ["token", "create", "--admin"], ["demo"]])
async def test_a_missing_database_or_server_is_one_line_and_exit_2(
    server_url: str, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    missing = pg.with_database(server_url, "timebank_test_missing_" + uuid.uuid4().hex[:8])
    monkeypatch.setenv("TIMEBANK_DATABASE_URL", missing)
    code, out, err = await run_cli(*command)
    assert (code, out) == (2, ""), err
    assert "Traceback" not in err
    assert "does not exist: create it" in err, err

    with socket_nobody_listens_on() as port:
        monkeypatch.setenv("TIMEBANK_DATABASE_URL", f"postgresql://postgres:secret@127.0.0.1:{port}/timebank")
        code, out, err = await run_cli(*command)
    assert (code, out) == (2, ""), err
    assert "Traceback" not in err
    assert f"timebank: database postgresql://postgres@127.0.0.1:{port}/timebank (TIMEBANK_DATABASE_URL)" in err
    assert "cannot reach the database server" in err, err
    assert "secret" not in err


@contextlib.contextmanager
def socket_nobody_listens_on() -> Iterator[int]:
    """A local port that refuses connections: bound (so nobody else takes it) but not listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:p%40ss@db:5432/tb", "postgresql://u@db:5432/tb"),
        ("postgresql://u@db/tb?password=x&sslmode=require", "postgresql://u@db/tb?sslmode=require"),
        ("postgres://db/tb", "postgres://db/tb"),
        (
            "postgresql://postgres:@/timebank?host=/var/lib/timebank/pgdata",
            "postgresql://postgres@/timebank?host=/var/lib/timebank/pgdata",
        ),
    ],
)
def test_urls_are_shown_without_passwords(url: str, shown: str) -> None:
    assert cli.redacted(url) == shown
