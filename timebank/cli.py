"""`timebank serve|migrate|verify|token|demo`."""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from timebank.config import Settings, SettingsError, load_settings
from timebank.logging import configure_logging


class Database:
    """The owner URL to use, starting the embedded server when no URL is configured."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.server: Any = None

    def url(self) -> str:
        if self.settings.database_url:
            return self.settings.database_url
        from timebank.embedded import embedded_database_url, start_embedded_server

        if self.server is None:
            self.server = start_embedded_server(self.settings.data_dir)
        return embedded_database_url(self.server)


async def _app_connection(
    settings: Settings, url: str, *, statement_timeout_ms: int | None = None
) -> asyncpg.Connection:
    from timebank.db import connect_kwargs

    kwargs = connect_kwargs(settings, url)
    if statement_timeout_ms is not None:
        kwargs["server_settings"]["statement_timeout"] = str(statement_timeout_ms)
    return await asyncpg.connect(**kwargs)


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    from litestar import Litestar

    from timebank.app import create_app
    from timebank.auth.bootstrap import ensure_admin_token
    from timebank.migrate import migrate
    from timebank.server import serve

    host = args.host or settings.host
    port = args.port or settings.port
    database = Database(settings)
    url = database.url()
    if settings.migrate_on_start and not args.no_migrate:
        asyncio.run(migrate(settings, url))
    if settings.admin_token:
        try:
            asyncio.run(ensure_admin_token(url, settings.admin_token))
        except asyncpg.PostgresError as exc:  # e.g. the token was revoked, or belongs to a member
            print(f"timebank serve: {exc.args[0]}", file=sys.stderr)
            return 2
    where = f"embedded PostgreSQL in {settings.data_dir}" if database.server else "TIMEBANK_DATABASE_URL"
    print(
        f"timebank is running at http://{host}:{port}  (database: {where})\n"
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


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from timebank.migrate import migrate

    applied = asyncio.run(migrate(settings, Database(settings).url()))
    print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none, already current'}")
    return 0


def cmd_verify(settings: Settings, args: argparse.Namespace) -> int:
    from timebank.ledger.verify import CHECKS, verify

    async def run() -> int:
        # verify reads the whole ledger: the service's per-request statement timeout does not apply.
        url = Database(settings).url()
        conn = await _app_connection(settings, url, statement_timeout_ms=0)
        helpers = [await _app_connection(settings, url, statement_timeout_ms=0) for _ in range(args.jobs - 1)]
        try:
            community_id = None
            if args.community:
                community_id = await conn.fetchval("select id from communities where slug = $1", args.community)
                if community_id is None:
                    print(f"no community {args.community!r}", file=sys.stderr)
                    return 2
            report = await verify(conn, community_id, helpers)
        finally:
            for connection in (conn, *helpers):
                await connection.close()
        for check in CHECKS:
            status = "ok" if report.checked[check.name] == 0 else f"{report.checked[check.name]} VIOLATION(S)"
            print(f"{check.name:<30} {status:<16} {check.description}")
        for name, message in report.violations:
            print(f"VIOLATION {name}: {message}")
        print("verified: ledger consistent" if report.ok else f"FAILED: {len(report.violations)} violation(s)")
        return 0 if report.ok else 1

    try:
        return asyncio.run(run())
    except (asyncpg.UndefinedTableError, asyncpg.UndefinedFunctionError, asyncpg.InvalidSchemaNameError):
        print("timebank verify: this database has no timebank schema; run `timebank migrate` first", file=sys.stderr)
        return 2


def cmd_token(settings: Settings, args: argparse.Namespace) -> int:
    from timebank.auth.bootstrap import create_principal
    from timebank.auth.tokens import new_token

    async def run() -> str:
        url = Database(settings).url()
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
        print(asyncio.run(run()))
    except (asyncpg.PostgresError, ValueError) as exc:
        print(f"timebank token: {getattr(exc, 'args', [exc])[0]}", file=sys.stderr)
        return 2
    return 0


def _moment(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else "never"


def _token_id(text: str, command: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        print(f"timebank token {command}: {text!r} is not an id (a UUID)", file=sys.stderr)
        return None


def cmd_token_revoke(settings: Settings, args: argparse.Namespace) -> int:
    from timebank.auth.bootstrap import RevokedToken, revoke_token
    from timebank.auth.revocations import CONFIRM_SECONDS

    token_id = _token_id(args.id, "revoke")
    if token_id is None:
        return 2
    done: RevokedToken | None = asyncio.run(revoke_token(Database(settings).url(), token_id))
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


def cmd_token_list(settings: Settings, args: argparse.Namespace) -> int:
    from timebank.auth.bootstrap import member_tokens

    member_id = _token_id(args.member, "list")
    if member_id is None:
        return 2
    rows = asyncio.run(member_tokens(Database(settings).url(), member_id))
    if rows is None:
        print(f"timebank token list: no member has the id {member_id}", file=sys.stderr)
        return 2
    for row in rows:
        state = f"revoked {_moment(row.revoked_at)}" if row.revoked_at else "active"
        print(f"{row.id}  created {_moment(row.created_at)}  last used {_moment(row.last_used_at)}  {state}")
    return 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from timebank.demo import load_demo

    summary = asyncio.run(load_demo(settings, Database(settings).url()))
    print(summary)
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

    sub.add_parser("demo", help="load a sample community to explore").set_defaults(run=cmd_demo)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"timebank: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings)
    code: int = args.run(settings, args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
