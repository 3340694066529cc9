"""The service as an ASGI factory, for servers started by their own command line (granian).

    timebank migrate
    granian --interface asgi --factory --workers 2 timebank.asgi:app

`timebank serve` stays the way to run the service: it migrates, runs uvicorn with what
timebank/server.py adds (problem+json refusals of bad request lines, raw UTF-8 in URLs taken as
percent-encoded, /ready answering 503 for a grace period on SIGTERM before the drain) and supervises
its worker processes. This factory exists so that the benchmark can measure the same application
under another server (bench/stacks.py); a server started this way has none of those additions.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from pathlib import Path

from litestar import Litestar

from timebank.app import create_app
from timebank.config import load_settings
from timebank.logging import configure_logging

# Held open for the life of the process that took the lock: the lock is released when it exits.
_jobs_lock: list[int] = []


def first_process(dsn: str) -> bool:
    """Whether this process is the first of its server to start on `dsn`, and so runs the background jobs.

    `timebank serve` tells its forked workers their index; a server's own workers are not told, so
    the first to take an exclusive lock on a file named after the database runs the jobs (hold
    expiry, service requests, the public log's sealer), as worker 0 does under `timebank serve`.
    """
    digest = hashlib.sha256(dsn.encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"timebank-jobs-{digest}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    _jobs_lock.append(fd)
    return True


def app() -> Litestar:
    """The service for TIMEBANK_DATABASE_URL, configured from TIMEBANK_* as `timebank serve` is.

    The database must be migrated already (`timebank migrate`): each worker calls this factory, and
    migrating is a once-per-deployment step, not a per-process one.
    """
    settings = load_settings()
    if not settings.database_url:
        raise SystemExit("timebank.asgi:app needs TIMEBANK_DATABASE_URL (the embedded server is `timebank serve`'s)")
    configure_logging(settings)
    return create_app(settings, settings.database_url, run_jobs=first_process(settings.database_url))
