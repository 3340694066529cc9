"""Running the service under uvicorn, with a graceful SIGTERM, in one or more processes."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
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


def _config(app: Litestar, host: str, port: int, forwarded_allow_ips: str) -> uvicorn.Config:
    return uvicorn.Config(
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


def serve(
    make_app: Callable[[int], Litestar],
    host: str,
    port: int,
    grace_seconds: float,
    forwarded_allow_ips: str = "",
    workers: int = 1,
) -> None:
    """Serve `make_app(worker_index)`: in this process, or in `workers` forked processes sharing one socket."""
    if workers <= 1:
        _serve_one(make_app(0), host, port, grace_seconds, forwarded_allow_ips)
        return
    _serve_forked(make_app, host, port, grace_seconds, forwarded_allow_ips, workers)


def _serve_one(
    app: Litestar,
    host: str,
    port: int,
    grace_seconds: float,
    forwarded_allow_ips: str,
    sock: socket.socket | None = None,
) -> None:
    config = _config(app, host, port, forwarded_allow_ips)
    # uvicorn re-raises the signal it caught once it has shut down. With the default handler that
    # kills the process before exit hooks run (the embedded PostgreSQL would be left running); this
    # handler, which uvicorn restores before re-raising, turns it into a normal exit instead.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _exit_cleanly)
    GracefulServer(config, app, grace_seconds).run(sockets=[sock] if sock is not None else None)


PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """A worker is killed when the process that started it dies, however it dies (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _serve_forked(
    make_app: Callable[[int], Litestar],
    host: str,
    port: int,
    grace_seconds: float,
    forwarded_allow_ips: str,
    workers: int,
) -> None:
    """Bind once, fork `workers` processes that accept on the same socket, and supervise them.

    SIGTERM/SIGINT are passed on to every worker (each drains as one process would). A worker that
    dies on its own takes the others down and the parent exits 1, so that a supervisor restarts the
    service whole rather than leaving it at reduced capacity without saying so.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    parent = os.getpid()
    children: list[int] = []
    for index in range(workers):
        pid = os.fork()
        if pid == 0:
            _die_with_parent()
            if os.getppid() != parent:  # the parent died before the line above took effect
                os._exit(1)
            code = 0
            try:
                _serve_one(make_app(index), host, port, grace_seconds, forwarded_allow_ips, sock)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 0
            except BaseException:  # reported; the worker then exits without running the parent's hooks
                sys.excepthook(*sys.exc_info())
                code = 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        children.append(pid)
    sock.close()

    stopping = False

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
    failed = False
    while children:
        pid, status = os.wait()
        if pid not in children:
            continue
        children.remove(pid)
        if stopping and os.waitstatus_to_exitcode(status) == 0:
            continue
        failed = True  # a worker ended on its own, or failed while stopping
        if not stopping:
            forward(signal.SIGTERM, None)
    if failed:
        raise SystemExit(1)
