"""Running the service under uvicorn, with a graceful SIGTERM, in one or more processes."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import re
import signal
import socket
import sys
import threading
import uuid
from collections.abc import Callable
from types import FrameType
from typing import Any, NoReturn

import httptools
import msgspec
import uvicorn
from litestar import Litestar
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from timebank.errors import PROBLEM_MEDIA_TYPE, InvalidRequestError

# The longest request line waited for before it is handed to the parser untouched.
REQUEST_LINE_MAX_BYTES = 65_536
# method SP request-target SP HTTP-version: the target may hold any byte but space and line ends.
REQUEST_LINE = re.compile(rb"([!-~]+) ([^ \r\n]+) (HTTP/[0-9]\.[0-9]\r?\n)\Z")
NOT_ASCII = re.compile(rb"[\x80-\xff]")


def percent_encode_target(line: bytes) -> bytes:
    """The request line with every byte outside ASCII in its target percent-encoded.

    `curl "http://host/v1/communities/x/members?q=周"` sends 周 as three raw UTF-8 bytes, which the
    HTTP parser refuses in a URL; percent-encoded they mean exactly what the person typed.
    """
    if line.isascii():
        return line
    match = REQUEST_LINE.match(line)
    if match is None:
        return line
    target = NOT_ASCII.sub(lambda byte: b"%%%02X" % byte[0][0], match[2])
    return match[1] + b" " + target + b" " + match[3]


class Protocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with what a person would expect of two refusals.

    - Raw UTF-8 in a request's path or query is taken as if percent-encoded (the parser would
      refuse it). Each request line is collected whole before it reaches the parser. A pipelined
      request that arrives in the same read as the end of the one before it is parsed as sent (the
      parser gives no offset to cut at); clients that send raw UTF-8 (curl, browsers) do not pipeline.
    - A request the parser refuses is answered with a problem+json `400 invalid_request`, not with
      uvicorn's text/plain "Invalid HTTP request received.".
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Whether the next byte starts a request line, and the part of one received so far.
        self._line_expected = True
        self._line = b""

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        if self._line_expected:
            data = self._line + data
            # Empty lines before a request line are allowed (RFC 9112, 2.2): look past them.
            end = data.find(b"\n", len(data) - len(data.lstrip(b"\r\n")))
            if end < 0 and len(data) < REQUEST_LINE_MAX_BYTES:
                self._line = data  # the rest of the request line is still on its way
                return
            self._line = b""
            self._line_expected = False
            if end >= 0:
                start = len(data) - len(data.lstrip(b"\r\n"))
                data = data[:start] + percent_encode_target(data[start : end + 1]) + data[end + 1 :]
        # uvicorn's data_received, but with a problem+json refusal that says what is wrong.
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.logger.warning("Invalid HTTP request received.")
            self._refuse(exc)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._line_expected = False

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._line_expected = True

    def _refuse(self, exc: httptools.HttpParserError) -> None:
        """Answer 400 problem+json and close: after a parse error the connection is out of step."""
        if isinstance(exc, httptools.HttpParserInvalidURLError):
            error = InvalidRequestError(
                "the request's URL has a character that must be percent-encoded, such as a space or a control"
                " character (for example ?q=%E5%91%A8)"
            )
        else:
            error = InvalidRequestError("the request is not valid HTTP/1.1")
        request_id = uuid.uuid4().hex
        body = msgspec.json.encode(error.to_problem(request_id))
        head = [
            STATUS_LINE[400],
            *(name + b": " + value + b"\r\n" for name, value in self.server_state.default_headers),
            b"content-type: " + PROBLEM_MEDIA_TYPE.encode() + b"\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"x-request-id: " + request_id.encode() + b"\r\n",
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)
        self.transport.close()


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

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        with self.capture_signals():
            stop = _stop_requested.pop() if _stop_requested else None
            if stop is not None:
                # Asked to stop before uvicorn took the signals over (building the app, say): start
                # nothing new and shut down at once, with no grace period (no traffic came here yet).
                uvicorn.Server.handle_exit(self, stop, None)
            await self._serve(sockets)


# Stop signals that came while uvicorn was not listening for them: before it takes them over, and
# when it re-raises the one it handled once it has shut down. Noted, never raised as an exception: a
# signal handler runs between any two bytecodes, also inside a __del__ or a callback that swallows
# exceptions, where a raised SystemExit would be lost and the stop with it.
_stop_requested: list[int] = []
# Stop signals: passed on by the supervisor of forked workers, each of which drains on its own.
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})


def _note_stop(signum: int, frame: FrameType | None) -> None:
    _stop_requested.append(signum)


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
        http=Protocol,
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
        for signum in STOP_SIGNALS:  # a stop while the app is built is noted, then honoured at once
            signal.signal(signum, _note_stop)
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
    # handler, which uvicorn restores before re-raising, only notes it: run() returns, a normal exit.
    for signum in STOP_SIGNALS:
        signal.signal(signum, _note_stop)
    GracefulServer(config, app, grace_seconds).run(sockets=[sock] if sock is not None else None)


PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """A worker is killed when the process that started it dies, however it dies (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _serve_app(
    make_app: Callable[[int], Litestar],
    index: int,
    sock: socket.socket,
    host: str,
    port: int,
    grace_seconds: float,
    forwarded_allow_ips: str,
) -> None:
    _serve_one(make_app(index), host, port, grace_seconds, forwarded_allow_ips, sock)


def _run_worker(parent: int, start: Callable[[], None]) -> NoReturn:
    """The forked worker's whole life: `start()` serves until stopped; the exit code says how it ended.

    It is entered with the stop signals blocked (see _serve_forked): a worker asked to stop before
    uvicorn has taken the signals over (still building the app) has the stop noted once its handler
    is in place and honoured as soon as uvicorn starts, instead of dying of the signal's default action.
    """
    _die_with_parent()
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)
    code = 0
    try:
        for signum in STOP_SIGNALS:
            signal.signal(signum, _note_stop)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        start()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    except BaseException:  # reported; the worker then exits without running the parent's hooks
        sys.excepthook(*sys.exc_info())
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


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
    service whole rather than leaving it at reduced capacity without saying so. A stop signal may
    come while the workers are starting: until each process has its handler, the signals are blocked,
    not lost — they wait and are delivered once it is in place.
    """
    sock = _listening_socket(host, port)
    parent = os.getpid()
    children: list[int] = []
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    for index in range(workers):
        pid = os.fork()
        if pid == 0:
            _run_worker(
                parent,
                functools.partial(_serve_app, make_app, index, sock, host, port, grace_seconds, forwarded_allow_ips),
            )
        children.append(pid)
    sock.close()

    stopping = False

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    for signum in STOP_SIGNALS:
        signal.signal(signum, forward)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
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
