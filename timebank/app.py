"""create_app(settings, dsn) -> Litestar: the HTTP service."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, cast

import asyncpg
import structlog
from litestar import Litestar, Router
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from timebank import __version__
from timebank.audit.routes import router as audit_router
from timebank.auth.revocations import RevocationListener
from timebank.auth.routes import router as tokens_router
from timebank.auth.throttle import AuthThrottle, TokenCache
from timebank.communities.routes import router as communities_router
from timebank.config import Settings
from timebank.crediting.routes import router as crediting_router
from timebank.db import Database, connect_kwargs
from timebank.health import router as health_router
from timebank.holds.routes import router as holds_router
from timebank.holds.service import run_expiry_job
from timebank.http.context import Principal, provide_db, provide_principal
from timebank.http.guards import check_request
from timebank.http.middleware import options_middleware, request_context_middleware
from timebank.http.openapi import FinishedJsonPlugin, ReferencePagePlugin, operation_id
from timebank.http.problems import handle_exception
from timebank.http.query import index_query_parameters
from timebank.ledger.batch import WriteBatches
from timebank.ledger.routes import router as ledger_router
from timebank.log.routes import public_router as log_public_router
from timebank.log.routes import router as log_router
from timebank.log.sealer import run_sealer_job
from timebank.log.signer import checkpoint_signer
from timebank.members.routes import router as members_router
from timebank.pages.routes import router as pages_router
from timebank.pages.routes import static_router as pages_static_router
from timebank.pages.templating import template_config
from timebank.passbook.routes import router as passbook_router
from timebank.replicas.middleware import read_your_writes_middleware
from timebank.replicas.router import ReadRouter
from timebank.replicas.routes import metrics as metrics_route
from timebank.reports.routes import router as reports_router
from timebank.services.routes import router as services_router
from timebank.services.service import run_service_request_jobs

if TYPE_CHECKING:
    from litestar.types import ExceptionHandlersMap

log = structlog.get_logger(__name__)


async def _listener_connection(settings: Settings, dsn: str) -> asyncpg.Connection:
    """A connection of the service role of its own, outside the pool, for the revocation listener."""
    kwargs = connect_kwargs(settings, dsn)
    kwargs["server_settings"]["application_name"] = "timebank-token-listener-subscribing"
    return await asyncpg.connect(**kwargs, timeout=settings.pool_acquire_timeout_seconds)


def create_app(settings: Settings, dsn: str, *, run_jobs: bool = True) -> Litestar:
    """The service, connecting as the service role to the server that `dsn` names.

    `run_jobs` False leaves the background jobs (hold expiry, service requests) to another process of the service.
    """

    # A key without a checkpoint directory, or a key file that cannot be read, stops the start here.
    signer = checkpoint_signer(settings.log_key_file, settings.checkpoint_dir) if run_jobs else None

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        db = await Database.connect(settings, dsn)
        app.state.db = db
        # Read replicas (issue 13): without TIMEBANK_READ_DATABASE_URL every read is the primary's.
        reads = await ReadRouter.open(settings, db) if settings.read_database_urls else None
        app.state.reads = reads
        # Cached tokens are trusted only while this process hears of revocations (auth/revocations.py).
        revocations = RevocationListener(app.state.token_cache, lambda: _listener_connection(settings, dsn))
        app.state.revocations = revocations
        await revocations.start(wait_seconds=settings.pool_acquire_timeout_seconds)
        app.state.write_batches = WriteBatches(db, settings.write_batch_max_size, settings.write_batch_in_flight)
        app.state.draining = False
        jobs = [asyncio.create_task(run_expiry_job(db, settings.hold_expiry_interval_seconds))] if run_jobs else []
        if run_jobs:
            interval = settings.service_request_jobs_interval_seconds
            jobs.append(asyncio.create_task(run_service_request_jobs(db, interval)))
            # The public log: every committed transaction appended, and a checkpoint signed, each interval.
            jobs.append(asyncio.create_task(run_sealer_job(db, signer, settings.log_seal_interval_seconds)))
        try:
            yield
        finally:
            for job in jobs:
                job.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await job
            await revocations.stop()
            if reads is not None:
                await reads.close()
            await db.close()

    app = Litestar(
        route_handlers=[
            health_router,
            metrics_route,
            log_public_router,
            # Pages for people (issue 11): sessions in cookies, not bearer tokens; not in the API schema.
            pages_router,
            pages_static_router,
            # Every /v1 route: authenticate first, then hold the body to the exact schema.
            Router(
                path="/",
                route_handlers=[
                    communities_router,
                    members_router,
                    tokens_router,
                    ledger_router,
                    holds_router,
                    audit_router,
                    crediting_router,
                    reports_router,
                    services_router,
                    log_router,
                    passbook_router,
                ],
                guards=[check_request],
                security=[{"bearer": []}],
            ),
        ],
        dependencies={"db": Provide(provide_db), "principal": Provide(provide_principal)},
        signature_namespace={"Principal": Principal, "Database": Database},
        exception_handlers=cast("ExceptionHandlersMap", {Exception: handle_exception}),
        lifespan=[lifespan],
        template_config=template_config(),
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="timebank",
            version=__version__,
            description="The double-entry ledger of a community time bank. Amounts are whole minutes.",
            path="/schema",
            render_plugins=[ReferencePagePlugin(), FinishedJsonPlugin()],
            operation_id_creator=operation_id,
            components=Components(
                security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer", description="API token")}
            ),
        ),
        debug=False,
        # Logging is configured once by timebank.logging; Litestar must not install its own handlers.
        logging_config=None,
    )
    index_query_parameters(app)
    app.state.settings = settings
    app.state.auth_throttle = AuthThrottle(settings.auth_failures_per_minute)
    app.state.token_cache = TokenCache(settings.token_cache_seconds, settings.token_cache_size, trusted=False)
    # Outermost, so that even unmatched routes get a request id and their log line.
    app.state.reads = None
    # Inside the request context (the caller is known by the time the answer starts).
    handler = read_your_writes_middleware(app, app.asgi_handler)
    app.asgi_handler = request_context_middleware(options_middleware(app, handler))
    return app
