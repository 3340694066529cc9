"""structlog configuration: JSON lines in production, console output on a terminal.

The service's own events go straight through structlog's PrintLogger (fast path). Records from
other libraries' standard logging (uvicorn, asyncpg) are rendered by the same processors, so every
line on stderr has one format.
"""

from __future__ import annotations

import logging
import sys

import structlog

from timebank.config import Settings

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
# Field names whose values are secrets; masked in every log line.
_SECRET_KEYS = frozenset({"authorization", "token", "admin_token", "password", "database_url"})


def _mask_secrets(_: object, __: str, event: structlog.typing.EventDict) -> structlog.typing.EventDict:
    for key in event:
        if key.lower() in _SECRET_KEYS:
            event[key] = "***"
    return event


def configure_logging(settings: Settings) -> None:
    """Configure structlog and the standard library's root logger once for the process."""
    use_json = settings.log_format == "json" or (settings.log_format == "auto" and not sys.stderr.isatty())
    level = _LEVELS[settings.log_level]
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _mask_secrets,
    ]
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    tracebacks: list[structlog.typing.Processor] = [structlog.processors.dict_tracebacks] if use_json else []
    structlog.configure(
        processors=[*shared, *tracebacks, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tracebacks, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    # The service writes one canonical line per request; the server's access log would repeat it.
    logging.getLogger("uvicorn.access").disabled = True
