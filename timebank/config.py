"""Settings, decoded once from TIMEBANK_* environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import msgspec

PREFIX = "TIMEBANK_"


def default_data_dir() -> str:
    """Where the embedded PostgreSQL keeps its data when no database is configured.

    As root the embedded server runs as an unprivileged user, which cannot enter /root, so the data
    lives under /var/lib; anyone else gets the usual per-user data folder.
    """
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return "/var/lib/timebank"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(base) / "timebank")


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Every limit and connection setting; each field is TIMEBANK_<FIELD> in the environment."""

    # Owner connection used for migrations; the service itself connects as `db_app_role`.
    database_url: str | None = None
    db_app_role: Annotated[str, msgspec.Meta(pattern=r"^[a-z_][a-z0-9_]{0,62}$")] = "timebank_app"
    db_app_password: str | None = None
    db_owner_role: Annotated[str, msgspec.Meta(pattern=r"^[a-z_][a-z0-9_]{0,62}$")] = "timebank_owner"
    data_dir: str = msgspec.field(default_factory=default_data_dir)
    admin_token: str | None = None

    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 8000
    migrate_on_start: bool = True
    log_format: Annotated[str, msgspec.Meta(pattern="^(auto|json|console)$")] = "auto"
    log_level: Annotated[str, msgspec.Meta(pattern="^(debug|info|warning|error)$")] = "info"

    # Server processes sharing the port (each with its own pool of pool_max_size connections).
    workers: Annotated[int, msgspec.Meta(ge=1, le=64)] = 1
    pool_min_size: Annotated[int, msgspec.Meta(ge=1, le=100)] = 2
    pool_max_size: Annotated[int, msgspec.Meta(ge=1, le=200)] = 10
    pool_acquire_timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=60)] = 5.0
    statement_timeout_ms: Annotated[int, msgspec.Meta(ge=10, le=600_000)] = 5_000
    max_body_bytes: Annotated[int, msgspec.Meta(ge=256, le=10_485_760)] = 65_536
    page_size_default: Annotated[int, msgspec.Meta(ge=1, le=500)] = 50
    page_size_max: Annotated[int, msgspec.Meta(ge=1, le=500)] = 500
    conflict_retries: Annotated[int, msgspec.Meta(ge=0, le=20)] = 5
    # Concurrent writes of one kind posted together by one statement and one commit (1: each alone),
    # and how many such batches may be in the database at once.
    write_batch_max_size: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 64
    write_batch_in_flight: Annotated[int, msgspec.Meta(ge=1, le=100)] = 1
    hold_expiry_interval_seconds: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 30.0
    # Service request jobs: auto-confirmation after 7 days, cancellation of requests whose hold expired.
    service_request_jobs_interval_seconds: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 60.0
    shutdown_grace_seconds: Annotated[float, msgspec.Meta(ge=0, le=120)] = 2.0
    # Failed authentications a client address may make per minute before it is answered 429.
    auth_failures_per_minute: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 20
    # How long a token that authenticated stays trusted without a database lookup (0: never cached).
    token_cache_seconds: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 30.0
    token_cache_size: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 10_000
    # Reverse proxies whose X-Forwarded-For is believed (comma-separated addresses); none by default.
    forwarded_allow_ips: str = ""
    # The public log: the checkpoint signing key (a file `timebank log keygen` wrote; never in the
    # database), the directory every signed checkpoint is also written to, and how often the sealer
    # appends what committed and signs a checkpoint. Without a key, leaves are appended unsigned.
    log_key_file: str | None = None
    checkpoint_dir: str | None = None
    log_seal_interval_seconds: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 1.0
    # The passbook PDF's font: a .ttf, .otf or .ttc file with Chinese glyphs (default: one found on the
    # machine, such as Noto Sans CJK from Debian's fonts-noto-cjk).
    pdf_font: str | None = None
    # Read replicas (issue 13): standbys of PostgreSQL's own streaming replication, comma-separated
    # URLs of the same database (the service connects as `db_app_role`, read-only). Reads that
    # tolerate lag go there; a caller's reads after its own write go only where that write is
    # replayed. A standby more than read_max_lag_bytes or read_max_lag_seconds behind the primary,
    # or not answering within read_check_timeout_seconds, is skipped until it catches up. Any number
    # of workers and instances: each caller's position is kept on the primary (replicas/positions.py).
    read_database_url: str = ""
    read_pool_max_size: Annotated[int, msgspec.Meta(ge=1, le=200)] = 10
    read_check_interval_seconds: Annotated[float, msgspec.Meta(gt=0, le=60)] = 1.0
    read_check_timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=60)] = 2.0
    read_max_lag_bytes: Annotated[int, msgspec.Meta(ge=0, le=2**40)] = 16 * 1024 * 1024
    read_max_lag_seconds: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 10.0

    @property
    def read_database_urls(self) -> tuple[str, ...]:
        """The standbys' URLs, in the order given (empty: every read on the primary)."""
        return tuple(url.strip() for url in self.read_database_url.split(",") if url.strip())

    def __repr__(self) -> str:
        shown = {
            name: ("***" if name in _SECRETS and getattr(self, name) else getattr(self, name))
            for name in self.__struct_fields__
        }
        return f"Settings({shown})"

    __str__ = __repr__


_SECRETS = frozenset({"database_url", "db_app_password", "admin_token", "read_database_url"})


class SettingsError(ValueError):
    """A TIMEBANK_* variable does not hold a valid value."""


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Decode settings from the environment, naming the offending variable when one is invalid."""
    env = os.environ if environ is None else environ
    raw: dict[str, object] = {}
    fields = set(Settings.__struct_fields__)
    for key, value in env.items():
        if key.startswith(PREFIX):
            name = key[len(PREFIX) :].lower()
            if name in fields and value != "":
                raw[name] = value
    raw.update({k: v for k, v in overrides.items() if v is not None})
    try:
        settings = msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        message = str(exc)
        field = message.rsplit("$.", 1)[-1].rstrip("`") if "$." in message else ""
        variable = PREFIX + field.upper() if field else "a TIMEBANK_* variable"
        raise SettingsError(f"{variable}: {message}") from None
    return settings
