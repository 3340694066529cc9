"""`timebank serve|migrate|verify|token|demo|log|proof|passbook`."""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from timebank.config import Settings, SettingsError, load_settings
from timebank.logging import configure_logging

CONNECT_TIMEOUT_SECONDS = 10.0


class CommandError(Exception):
    """A known condition that stops a command: said in one line on stderr, exit status 2."""


def redacted(url: str) -> str:
    """The URL without its password (in the user part or as a query parameter), fit to print."""
    try:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        return "(a URL that cannot be parsed)"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hosts = netloc.rpartition("@")
        netloc = userinfo.split(":", 1)[0] + "@" + hosts
    kept = urlencode([(key, value) for key, value in query if "password" not in key.lower()], safe="/")
    return urlunsplit((parts.scheme, netloc, parts.path, kept, ""))


class Database:
    """The owner URL to use, starting the embedded server when no URL is configured.

    The first time the URL is asked for, the command says on stderr which database it works on
    (never the password), so that a terminal with other settings cannot go unnoticed.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.server: Any = None
        self._url: str | None = None

    def url(self) -> str:
        if self._url is None:
            self._url = self._locate()
            print(f"timebank: database {self.description()}", file=sys.stderr, flush=True)
        return self._url

    def _locate(self) -> str:
        if self.settings.database_url:
            return self.settings.database_url
        from timebank.embedded import embedded_database_url, start_embedded_server

        if self.server is None:
            self.server = start_embedded_server(self.settings.data_dir)
        return embedded_database_url(self.server)

    def name(self) -> str:
        """The database's URL without its password."""
        return redacted(self.url())

    def description(self) -> str:
        """The URL without its password, and where it comes from."""
        where = (
            "TIMEBANK_DATABASE_URL"
            if self.settings.database_url
            else f"embedded PostgreSQL, data in {self.settings.data_dir}"
        )
        return f"{self.name()} ({where})"

    async def require_migrated(self) -> str:
        """The URL, once it is certain that the database has every migration this code knows."""
        from timebank.migrate import pending_migrations

        url = self.url()
        conn = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT_SECONDS)
        try:
            pending, applied = await pending_migrations(conn)
        finally:
            await conn.close()
        if not pending:
            return url
        message = f"the database {self.name()} is not migrated: run `timebank migrate`"
        if applied:
            message += f" (it lacks {', '.join(pending)}, which this version of timebank needs)"
        raise CommandError(message)


# Failures that are no bug, by exception class (first match): what to tell the user, with the
# driver's own words as {exc}. TimeoutError comes before OSError, of which it is a kind.
KNOWN_FAILURES: tuple[tuple[tuple[type[BaseException], ...], str], ...] = (
    ((CommandError,), "{exc}"),
    (
        (asyncpg.InvalidCatalogNameError,),
        "{exc}: create it (or correct TIMEBANK_DATABASE_URL), then run `timebank migrate`",
    ),
    (
        (asyncpg.UndefinedTableError, asyncpg.UndefinedFunctionError, asyncpg.InvalidSchemaNameError),
        "the database is not migrated: run `timebank migrate`",
    ),
    (
        (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError),
        "the database server refused the login: {exc}",
    ),
    (
        (asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError),
        "the database server does not accept connections now: {exc}",
    ),
    (
        (asyncpg.PostgresConnectionError, asyncpg.AdminShutdownError, asyncpg.CrashShutdownError),
        "the connection to the database was lost: {exc}",
    ),
    ((TimeoutError,), "the database server did not answer in time"),
    ((OSError,), "cannot reach the database server: {exc}"),
)


def known_failure(exc: BaseException) -> str | None:
    """What to tell the user for a failure that is no bug (the database is missing, down, ...)."""
    for kinds, message in KNOWN_FAILURES:
        if isinstance(exc, kinds):
            return message.format(exc=exc)
    return None


async def _app_connection(
    settings: Settings, url: str, *, statement_timeout_ms: int | None = None
) -> asyncpg.Connection:
    from timebank.db import connect_kwargs

    kwargs = connect_kwargs(settings, url)
    if statement_timeout_ms is not None:
        kwargs["server_settings"]["statement_timeout"] = str(statement_timeout_ms)
    return await asyncpg.connect(**kwargs)


def cmd_serve(settings: Settings, args: argparse.Namespace, database: Database) -> int:
    from litestar import Litestar

    from timebank.app import create_app
    from timebank.auth.bootstrap import ensure_admin_token
    from timebank.migrate import migrate
    from timebank.server import serve

    host = args.host or settings.host
    port = args.port or settings.port
    url = database.url()
    if settings.migrate_on_start and not args.no_migrate:
        asyncio.run(migrate(settings, url))
    else:
        asyncio.run(database.require_migrated())
    if settings.admin_token:
        try:
            asyncio.run(ensure_admin_token(url, settings.admin_token))
        except asyncpg.PostgresError as exc:  # e.g. the token was revoked, or belongs to a member
            print(f"timebank serve: {exc.args[0]}", file=sys.stderr)
            return 2
    print(
        f"timebank is running at http://{host}:{port}  (database: {database.description()})\n"
        f"  API documentation: http://{host}:{port}/schema\n"
        "  An admin token: run `timebank token create --admin` in another terminal,\n"
        "  or start with TIMEBANK_ADMIN_TOKEN set. Sample data: `timebank demo`.",
        flush=True,
    )

    def make_app(worker: int) -> Litestar:
        # Background jobs run in the first worker only.
        return create_app(settings, url, run_jobs=worker == 0)

    serve(make_app, host, port, settings.shutdown_grace_seconds, settings.forwarded_allow_ips, settings.workers)
    return 0


def cmd_migrate(settings: Settings, args: argparse.Namespace, database: Database) -> int:
    from timebank.migrate import migrate

    applied = asyncio.run(migrate(settings, database.url()))
    print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none, already current'}")
    return 0


def cmd_verify(settings: Settings, args: argparse.Namespace, database: Database) -> int:
    from timebank.ledger.verify import CHECKS, verify

    log_target = _log_target(args, settings) if args.checkpoints else None

    async def run() -> int:
        url = await database.require_migrated()
        # verify reads the whole ledger: the service's per-request statement timeout does not apply.
        conn = await _app_connection(settings, url, statement_timeout_ms=0)
        helpers: list[asyncpg.Connection] = []
        try:
            for _ in range(args.jobs - 1):
                helpers.append(await _app_connection(settings, url, statement_timeout_ms=0))
            community_id = None
            if args.community:
                community_id = await conn.fetchval("select id from communities where slug = $1", args.community)
                if community_id is None:
                    print(f"no community {args.community!r}", file=sys.stderr)
                    return 2
            log_counts: dict[str, int] = {}
            log_violations: list[tuple[str, str]] = []
            if log_target is None:
                report = await verify(conn, community_id, helpers)
            else:
                log_conns = [await _app_connection(settings, url, statement_timeout_ms=0) for _ in range(args.jobs + 1)]
                ledger_helpers = list(helpers)
                helpers.extend(log_conns)
                report, log_counts, log_violations = await _verify_with_log(
                    conn, ledger_helpers, community_id, log_conns, log_target
                )
            violation_count = len(report.violations) + len(log_violations)
            checks = len(CHECKS) + (len(log_counts) if log_target is not None else 0)
            # Recorded for /audit, which shows auditors the last run next to the latest checkpoint.
            await conn.execute(
                "select record_verify_run($1, $2, $3, $4)",
                community_id,
                log_target is not None,
                checks,
                violation_count,
            )
        finally:
            for connection in (conn, *helpers):
                # A connection the server already dropped closes without a word.
                await connection.close(timeout=CONNECT_TIMEOUT_SECONDS)
        for check in CHECKS:
            status = "ok" if report.checked[check.name] == 0 else f"{report.checked[check.name]} VIOLATION(S)"
            print(f"{check.name:<30} {status:<16} {check.description}")
        from timebank.log.audit import LOG_CHECKS

        for log_check in LOG_CHECKS if args.checkpoints else ():
            count = log_counts[log_check.name]
            status = "ok" if count == 0 else f"{count} VIOLATION(S)"
            print(f"{log_check.name:<30} {status:<16} {log_check.description}")
        violations = report.violations + log_violations
        for name, message in violations:
            print(f"VIOLATION {name}: {message}")
        ok = not violations
        checked = "ledger and public log consistent" if args.checkpoints else "ledger consistent"
        print(f"verified: {checked}" if ok else f"FAILED: {len(violations)} violation(s)")
        return 0 if ok else 1

    return asyncio.run(run())


async def _verify_with_log(
    conn: asyncpg.Connection,
    helpers: list[asyncpg.Connection],
    community_id: uuid.UUID | None,
    log_conns: list[asyncpg.Connection],
    log_target: tuple[Any, Any],
) -> tuple[Any, dict[str, int], list[tuple[str, str]]]:
    """The ledger's checks (mostly PostgreSQL's work) and the log's (leaves built by the log's
    reading connections, hashed by this process) at once, each on connections of their own."""
    from timebank.ledger.verify import verify
    from timebank.log.audit import verify_log

    ledger_task = asyncio.create_task(verify(conn, community_id, helpers))
    try:
        log_counts, log_violations = await verify_log(log_conns[0], *log_target, log_conns[1:])
    finally:
        if not ledger_task.done():
            await asyncio.wait([ledger_task])
    return ledger_task.result(), log_counts, log_violations


def cmd_jobs_run_once(settings: Settings, args: argparse.Namespace, database: Database) -> int:
    from timebank.db import Database as Pool
    from timebank.services.service import run_jobs_once

    async def run() -> dict[str, int]:
        url = await database.require_migrated()
        pool = await Pool.connect(settings, url)
        try:
            return await run_jobs_once(pool, "cli-" + uuid.uuid4().hex)
        finally:
            await pool.close()

    for name, count in asyncio.run(run()).items():
        print(f"{name:<32} {count}")
    return 0


def _log_target(args: argparse.Namespace, settings: Settings) -> tuple[Any, Any]:
    """--checkpoints DIR and the log's verifier key (--log-key, or that of TIMEBANK_LOG_KEY_FILE)."""
    from pathlib import Path

    from timebank.log.note import NoteError, Verifier
    from timebank.log.signer import load_signer

    directory = Path(args.checkpoints)
    if not directory.is_dir():
        raise CommandError(f"--checkpoints {directory}: no such directory")
    try:
        if args.log_key:
            text = args.log_key if "+" in args.log_key else Path(args.log_key).read_text(encoding="ascii")
            return directory, Verifier.parse(text)
        if settings.log_key_file:
            return directory, load_signer(settings.log_key_file).verifier
    except (OSError, NoteError) as exc:
        raise CommandError(f"the log's key: {exc}") from None
    raise CommandError("--checkpoints needs the log's verifier key: --log-key VKEY (or TIMEBANK_LOG_KEY_FILE)")


def cmd_token(settings: Settings, args: argparse.Namespace, database: Database) -> int:
    from timebank.auth.bootstrap import create_principal
    from timebank.auth.tokens import new_token

    async def run() -> str:
        url = await database.require_migrated()
        token, digest = new_token()
        if not args.member:
            await create_principal(url, "admin" if args.admin else "auditor", args.community, token)
            return token
        conn = await _app_connection(settings, url)
        try:
            await conn.fetchval(
                "select issue_member_token(null, $1, $2, $3)", "cli-" + uuid.uuid4().hex, uuid.UUID(args.member), digest
            )
        finally:
            await conn.close()
        return token

    try:
        token = asyncio.run(run())
    except (asyncpg.PostgresError, ValueError) as exc:
        # A refusal of the SQL operation (an unknown member or community) or a malformed id; any
        # other database error is left to main(), which names the known ones.
        if isinstance(exc, asyncpg.PostgresError) and exc.sqlstate != "TB000":
            raise
        print(f"timebank token: {exc.args[0]}", file=sys.stderr)
        return 2
    # stdout is the token alone: scripts do TOKEN=$(timebank token create --admin).
    print(token)
    return 0


def _moment(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else "never"


def _token_id(text: str, command: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        print(f"timebank token {command}: {text!r} is not an id (a UUID)", file=sys.stderr)
        return None


def cmd_token_revoke(settings: Settings, args: argparse.Namespace, database: Database) -> int:
    from timebank.auth.bootstrap import RevokedToken
    from timebank.auth.revocations import CONFIRM_SECONDS

    token_id = _token_id(args.id, "revoke")
    if token_id is None:
        return 2
    done: RevokedToken | None = asyncio.run(_revoke(database, token_id))
    if done is None:
        print(f"timebank token revoke: no token has the id {token_id}", file=sys.stderr)
        return 2
    if done.kind == "member":
        whose = f"member {done.member_id} ({done.display_name}, community {done.community})"
    elif done.kind == "auditor":
        whose = f"auditor {done.principal_id} of " + (
            f"community {done.community}" if done.community else "every community"
        )
    else:
        whose = f"admin {done.principal_id}"
    if done.revoked_now:
        print(f"revoked token {done.token_id} of {whose} at {_moment(done.revoked_at)}")
    else:
        print(f"token {done.token_id} of {whose} was already revoked at {_moment(done.revoked_at)}; nothing changed")
    if done.unconfirmed:
        print(
            f"warning: {done.unconfirmed} server process(es) did not confirm within {CONFIRM_SECONDS:g} s;"
            " each refuses the token as soon as it hears of the revocation",
            file=sys.stderr,
        )
    return 0


def cmd_token_list(settings: Settings, args: argparse.Namespace, database: Database) -> int:

    member_id = _token_id(args.member, "list")
    if member_id is None:
        return 2
    rows = asyncio.run(_member_tokens(database, member_id))
    if rows is None:
        print(f"timebank token list: no member has the id {member_id}", file=sys.stderr)
        return 2
    for row in rows:
        state = f"revoked {_moment(row.revoked_at)}" if row.revoked_at else "active"
        print(f"{row.id}  created {_moment(row.created_at)}  last used {_moment(row.last_used_at)}  {state}")
    return 0


async def _revoke(database: Database, token_id: uuid.UUID) -> Any:
    from timebank.auth.bootstrap import revoke_token

    return await revoke_token(await database.require_migrated(), token_id)


async def _member_tokens(database: Database, member_id: uuid.UUID) -> Any:
    from timebank.auth.bootstrap import member_tokens

    return await member_tokens(await database.require_migrated(), member_id)


def cmd_demo(settings: Settings, args: argparse.Namespace, database: Database) -> int:
    from timebank.demo import load_demo

    async def run() -> str:
        return await load_demo(settings, await database.require_migrated())

    summary = asyncio.run(run())
    print(summary)
    return 0


# The public log (timebank/log): keygen, seal, proof check.
def cmd_log_keygen(settings: Settings, args: argparse.Namespace, database: Database) -> int:
    import os

    from timebank.log.note import NoteError, Signer

    try:
        signer = Signer.generate(args.name)
    except NoteError as exc:
        print(f"timebank log keygen: {exc}", file=sys.stderr)
        return 2
    try:
        # Created readable by its owner only, and never over an existing key.
        fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        print(f"timebank log keygen: cannot create {args.out}: {exc.strerror}", file=sys.stderr)
        return 2
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(signer.encode() + "\n")
    print(f"wrote the private key to {args.out} (mode 0600); set TIMEBANK_LOG_KEY_FILE to it.")
    print("The note verifier key, to publish:")
    print(signer.verifier.encode())
    return 0


def cmd_log_seal(settings: Settings, args: argparse.Namespace, database: Database) -> int:
    from timebank.log.sealer import seal_once
    from timebank.log.signer import SigningRefusedError, checkpoint_signer

    try:
        signer = checkpoint_signer(settings.log_key_file, settings.checkpoint_dir)
    except SigningRefusedError as exc:
        print(f"timebank log seal: {exc}", file=sys.stderr)
        return 2

    async def run() -> int:
        url = await database.require_migrated()
        conn = await _app_connection(settings, url, statement_timeout_ms=0)
        reader = None
        try:
            reader = await _app_connection(settings, url, statement_timeout_ms=0)
            result = await seal_once(conn, signer, reader=reader)
        except SigningRefusedError as exc:
            print(f"timebank log seal: REFUSED: {exc}", file=sys.stderr)
            return 1
        finally:
            for opened in (conn, reader):
                if opened is not None:
                    await opened.close(timeout=CONNECT_TIMEOUT_SECONDS)
        signed = "a checkpoint signed" if result.checkpoint else "no new checkpoint"
        print(f"appended {result.appended} transaction(s); the log has {result.tree_size} leaves; {signed}")
        return 0

    return asyncio.run(run())


def cmd_passbook(settings: Settings, args: argparse.Namespace, database: Database) -> int:
    from pathlib import Path

    from timebank.errors import DomainError
    from timebank.http.moments import parse_moment
    from timebank.passbook.models import Passbook
    from timebank.passbook.service import print_passbook

    try:
        member_id = uuid.UUID(args.member)
    except ValueError:
        print(f"timebank passbook: --member {args.member}: not a member id (a UUID)", file=sys.stderr)
        return 2

    async def on_own_connection(work: Callable[[Any], Awaitable[Passbook]]) -> Passbook:
        """Read on a connection of its own, without the service's statement timeout."""
        url = await database.require_migrated()
        conn = await _app_connection(settings, url, statement_timeout_ms=0)
        try:
            return await work(conn)
        finally:
            await conn.close(timeout=CONNECT_TIMEOUT_SECONDS)

    try:
        bounds = parse_moment("from", args.start), parse_moment("to", args.end)
        printed = asyncio.run(print_passbook(on_own_connection, member_id, *bounds, settings.pdf_font))
    except DomainError as exc:
        print(f"timebank passbook: {exc.detail}", file=sys.stderr)
        return 2
    Path(args.output).write_bytes(printed.pdf)
    passbook = printed.passbook
    pages = len(passbook.pages)
    print(f"wrote {args.output}: the passbook of {passbook.display_name} ({passbook.member_no}), {pages} page(s)")
    return 0


def cmd_proof_check(settings: Settings, args: argparse.Namespace, database: Database) -> int:
    from pathlib import Path

    from timebank.log.check import ProofCheckError, check_proof

    try:
        verifier = args.key if "+" in args.key else Path(args.key).read_text(encoding="ascii").strip()
        proof = Path(args.proof).read_text(encoding="utf-8")
        transaction = Path(args.transaction).read_bytes() if args.transaction else None
        print(check_proof(verifier, proof, transaction))
    except (OSError, UnicodeDecodeError) as exc:
        print(f"timebank proof check: {exc}", file=sys.stderr)
        return 2
    except ProofCheckError as exc:
        print(f"FAILED: {exc}")
        return 1
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="timebank", description="The ledger of a community time bank.")
    sub = top.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP service (migrates first)")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8000)")
    serve.add_argument("--no-migrate", action="store_true", help="do not apply migrations at start")
    serve.set_defaults(run=cmd_serve)

    sub.add_parser("migrate", help="apply pending migrations").set_defaults(run=cmd_migrate)

    verify = sub.add_parser("verify", help="check every ledger invariant; exit 1 naming each violation")
    verify.add_argument("--community", metavar="SLUG", help="check one community only")
    verify.add_argument(
        "--jobs", type=int, default=2, choices=range(1, 17), metavar="N",
        help="database connections checking at once, all on one snapshot (default 2)",
    )  # fmt: skip
    verify.add_argument(
        "--checkpoints", metavar="DIR",
        help="also recompute the public log from the ledger and check every checkpoint saved in DIR",
    )  # fmt: skip
    verify.add_argument(
        "--log-key", metavar="VKEY", help="with --checkpoints: the log's note verifier key, or a file holding it"
        " (default: that of TIMEBANK_LOG_KEY_FILE)",
    )  # fmt: skip
    verify.set_defaults(run=cmd_verify)

    token = sub.add_parser("token", help="manage API tokens")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    create = token_sub.add_parser("create", help="print a new token (shown once; only its hash is stored)")
    who = create.add_mutually_exclusive_group(required=True)
    who.add_argument("--admin", action="store_true", help="a new system admin")
    who.add_argument("--member", metavar="ID", help="a token for this member")
    who.add_argument("--auditor", action="store_true", help="a read-only auditor (of --community, or all)")
    create.add_argument("--community", metavar="SLUG", help="with --auditor: the community audited")
    create.set_defaults(run=cmd_token)
    revoke = token_sub.add_parser(
        "revoke", help="revoke a token for good (any: a member's, an admin's or an auditor's); audited as system"
    )
    revoke.add_argument("id", metavar="ID", help="the token's id, as `token list` or GET /v1/members/{id}/tokens shows")
    revoke.set_defaults(run=cmd_token_revoke)
    listing = token_sub.add_parser("list", help="a member's tokens, newest first (never the secrets)")
    listing.add_argument("--member", metavar="ID", required=True, help="the member")
    listing.set_defaults(run=cmd_token_list)

    jobs = sub.add_parser("jobs", help="the service's background jobs")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True)
    jobs_sub.add_parser(
        "run-once",
        help="run every job once, as `system` (for cron): expire holds, cancel service requests whose hold"
        " expired, confirm those reported 7 days ago",
    ).set_defaults(run=cmd_jobs_run_once)

    sub.add_parser("demo", help="load a sample community to explore").set_defaults(run=cmd_demo)

    log_cmd = sub.add_parser("log", help="the public log: signing key, sealing")
    log_sub = log_cmd.add_subparsers(dest="log_command", required=True)
    keygen = log_sub.add_parser("keygen", help="make the checkpoint signing key; prints its note verifier key last")
    keygen.add_argument("--name", required=True, metavar="ORIGIN", help="the log's origin, e.g. timebank.example/log")
    keygen.add_argument("--out", required=True, metavar="FILE", help="the private key file to create (mode 0600)")
    keygen.set_defaults(run=cmd_log_keygen)
    log_sub.add_parser(
        "seal", help="append every committed transaction and sign a checkpoint, once (the server does it continually)"
    ).set_defaults(run=cmd_log_seal)

    proof = sub.add_parser("proof", help="proofs of the public log")
    proof_sub = proof.add_subparsers(dest="proof_command", required=True)
    check = proof_sub.add_parser(
        "check", help="verify a C2SP tlog-proof offline, with only the log's verifier key (no database, no service)"
    )
    check.add_argument("proof", metavar="PROOF", help="a tlog-proof file (the tlog_proof of GET .../proof)")
    check.add_argument("--key", required=True, metavar="VKEY", help="the note verifier key, or a file holding it")
    check.add_argument(
        "--transaction", metavar="FILE", help="the transaction's JSON as served; default: the leaf in the proof's extra"
    )
    check.set_defaults(run=cmd_proof_check)
    _passbook_parser(sub)
    return top


def _passbook_parser(sub: Any) -> None:
    passbook = sub.add_parser("passbook", help="print a member's passbook (存折) as a PDF in Chinese")
    passbook.add_argument("--member", required=True, metavar="ID", help="the member's id")
    passbook.add_argument("-o", "--output", required=True, metavar="FILE", help="where to write the PDF")
    passbook.add_argument("--from", dest="start", metavar="DATE", help="entries from this day (or RFC 3339 moment)")
    passbook.add_argument("--to", dest="end", metavar="DATE", help="entries before this day (or RFC 3339 moment)")
    passbook.set_defaults(run=cmd_passbook)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"timebank: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings)
    try:
        code: int = args.run(settings, args, Database(settings))
    except Exception as exc:
        message = known_failure(exc)
        if message is None:
            raise
        print(f"timebank: {message}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    raise SystemExit(main())
