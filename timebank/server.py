"""Running the service under uvicorn, with a graceful SIGTERM."""

from __future__ import annotations

import signal
import threading
from types import FrameType

import uvicorn
from litestar import Litestar


class GracefulServer(uvicorn.Server):
    """On the first SIGTERM/SIGINT: /ready answers 503 for `grace_seconds` so that load balancers
    stop sending, then uvicorn stops accepting, finishes in-flight requests and exits.
    A second signal exits at once."""

    def __init__(self, config: uvicorn.Config, app: Litestar, grace_seconds: float) -> None:
        super().__init__(config)
        self.app = app
        self.grace_seconds = grace_seconds
        self._draining = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._draining or self.grace_seconds <= 0:
            self.app.state.draining = True
            super().handle_exit(sig, frame)
            return
        self._draining = True
        self.app.state.draining = True
        timer = threading.Timer(self.grace_seconds, super().handle_exit, args=(sig, frame))
        timer.daemon = True
        timer.start()


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def serve(app: Litestar, host: str, port: int, grace_seconds: float, forwarded_allow_ips: str = "") -> None:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=30,
        limit_concurrency=1000,
        # X-Forwarded-For decides which address the auth throttle charges, so it is believed only
        # from the proxies named in TIMEBANK_FORWARDED_ALLOW_IPS (none by default).
        proxy_headers=bool(forwarded_allow_ips),
        forwarded_allow_ips=forwarded_allow_ips or None,
        loop="uvloop",
        http="httptools",
    )
    # uvicorn re-raises the signal it caught once it has shut down. With the default handler that
    # kills the process before exit hooks run (the embedded PostgreSQL would be left running); this
    # handler, which uvicorn restores before re-raising, turns it into a normal exit instead.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _exit_cleanly)
    GracefulServer(config, app, grace_seconds).run()
