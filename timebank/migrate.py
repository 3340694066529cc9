"""Forward-only migrations, re-applied SQL functions and the service role's grants.

Runs as the owner connection (TIMEBANK_DATABASE_URL). Objects are created as the owner role, so the
SECURITY DEFINER functions run as that role and never as a superuser. Safe to run twice, or from two
processes at once: the whole run holds an advisory lock and each step is idempotent.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import structlog

from timebank.config import Settings

log = structlog.get_logger(__name__)

_PACKAGE_DIR = Path(__file__).resolve().parent
# In a built wheel the SQL ships inside the package; in a checkout it is the top-level sql/ folder.
SQL_DIR = _PACKAGE_DIR / "sql" if (_PACKAGE_DIR / "sql").is_dir() else _PACKAGE_DIR.parent / "sql"
MIGRATIONS_DIR = SQL_DIR / "migrations"
FUNCTIONS_DIR = SQL_DIR / "functions"
GRANTS_FILE = SQL_DIR / "grants.sql"
SCHEMA = "timebank"
# pg_advisory_lock key: the first 8 bytes of sha256("timebank.migrate"), as a signed bigint.
LOCK_KEY = int.from_bytes(hashlib.sha256(b"timebank.migrate").digest()[:8], "big", signed=True)


@dataclass(frozen=True)
class Migration:
    version: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


class MigrationError(RuntimeError):
    """An applied migration was edited after the fact, or the database refused a step."""


def _failure(migration: Migration, exc: asyncpg.PostgresError) -> str:
    """What the operator needs from a refused migration: which one, why, the details and what to do."""
    parts = [f"migration {migration.version} failed and was rolled back: {exc.args[0] if exc.args else exc}"]
    for label, value in (("detail", getattr(exc, "detail", None)), ("hint", getattr(exc, "hint", None))):
        if value:
            parts.append(f"{label}: {value}")
    return "\n".join(parts)


def migrations() -> list[Migration]:
    return [Migration(p.stem, p) for p in sorted(MIGRATIONS_DIR.glob("*.sql"))]


async def _ensure_roles(conn: asyncpg.Connection, settings: Settings) -> None:
    """Create the owner and service roles when missing; roles are shared by the whole cluster."""
    for role, options in ((settings.db_owner_role, "nologin"), (settings.db_app_role, "login")):
        await conn.execute(
            f"""
            do $$ begin
                execute format('create role %I {options}', '{role}');
            exception when duplicate_object or unique_violation then null;
            end $$
            """
        )
    member = await conn.fetchval("select pg_has_role(current_user, $1, 'member')", settings.db_owner_role)
    if not member:
        await conn.execute(f'grant "{settings.db_owner_role}" to current_user')
    if settings.db_app_password:
        statement = await conn.fetchval(
            "select format('alter role %I password %L', $1::text, $2::text)",
            settings.db_app_role,
            settings.db_app_password,
        )
        await conn.execute(statement)


async def migrate(settings: Settings, dsn: str) -> list[str]:
    """Bring the database at `dsn` to the current schema; returns the versions newly applied."""
    conn = await asyncpg.connect(dsn, server_settings={"application_name": "timebank-migrate"})
    applied: list[str] = []
    try:
        await conn.execute("set client_min_messages = warning")
        await conn.execute("select pg_advisory_lock($1)", LOCK_KEY)
        try:
            await _ensure_roles(conn, settings)
            owner = settings.db_owner_role
            async with conn.transaction():
                await conn.execute(f'create schema if not exists {SCHEMA} authorization "{owner}"')
                await conn.execute(f'set local role "{owner}"')
                await conn.execute(f"set local search_path = {SCHEMA}, pg_temp")
                await conn.execute(
                    """
                    create table if not exists schema_migrations (
                        version text primary key,
                        checksum text not null,
                        applied_at timestamptz not null default clock_timestamp()
                    )
                    """
                )
                done = {r["version"]: r["checksum"] for r in await conn.fetch("select * from schema_migrations")}
                for migration in migrations():
                    if migration.version in done:
                        if done[migration.version] != migration.checksum:
                            raise MigrationError(f"migration {migration.version} changed after it was applied")
                        continue
                    try:
                        await conn.execute(migration.sql)
                    except asyncpg.PostgresError as exc:
                        raise MigrationError(_failure(migration, exc)) from exc
                    await conn.execute(
                        "insert into schema_migrations (version, checksum) values ($1, $2)",
                        migration.version,
                        migration.checksum,
                    )
                    applied.append(migration.version)
                for path in sorted(FUNCTIONS_DIR.glob("*.sql")):
                    await conn.execute(path.read_text(encoding="utf-8"))
                grants = GRANTS_FILE.read_text(encoding="utf-8").replace("{app_role}", f'"{settings.db_app_role}"')
                await conn.execute(grants)
                database = await conn.fetchval("select current_database()")
                await conn.execute(f'reset role; grant connect on database "{database}" to "{settings.db_app_role}"')
        finally:
            await conn.execute("select pg_advisory_unlock($1)", LOCK_KEY)
    finally:
        await conn.close()
    if applied:
        log.info("migrations_applied", versions=applied)
    return applied


async def pending_migrations(conn: asyncpg.Connection) -> tuple[list[str], list[str]]:
    """(versions this code knows that the database lacks, versions it has), read as the owner."""
    table = await conn.fetchval("select to_regclass($1)", f"{SCHEMA}.schema_migrations")
    rows = await conn.fetch(f"select version from {SCHEMA}.schema_migrations") if table is not None else []
    applied = sorted(row["version"] for row in rows)
    known = set(applied)
    return [m.version for m in migrations() if m.version not in known], applied
