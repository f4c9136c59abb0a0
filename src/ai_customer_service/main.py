"""The application factory: ``create_app(settings)`` wires routers, error handlers and the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from ai_customer_service import __version__
from ai_customer_service.config import Settings
from ai_customer_service.context import AppContext
from ai_customer_service.db.engine import Database
from ai_customer_service.health.router import router as health_router
from ai_customer_service.http.errors import install_error_handlers
from ai_customer_service.http.middleware import RequestContextMiddleware
from ai_customer_service.logs import get_logger
from ai_customer_service.outbox.router import router as outbox_router
from ai_customer_service.outbox.worker import OutboxWorker

log = get_logger(__name__)

API_PREFIX = "/api/v1/customer-service"


def create_app(settings: Settings, *, db: Database | None = None) -> FastAPI:
    """Build the ASGI app. The database schema must already be migrated (``serve`` does it first)."""
    ctx = AppContext(settings=settings, db=db or Database(settings))
    owns_db = db is None
    outbox = OutboxWorker(settings, ctx.db, ctx.metrics)
    if settings.outbox_worker_enabled:
        ctx.workers.every(settings.outbox_poll_interval_seconds, "outbox-delivery", outbox.drain)
    ctx.workers.every(15.0, "outbox-metrics", outbox.refresh_metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx.workers.start()
        log.info("service started", version=__version__, store=settings.store_name, addr=settings.addr)
        try:
            yield
        finally:
            ctx.draining = True
            await ctx.workers.stop()
            if owns_db:
                await ctx.db.dispose()
            log.info("service stopped")

    app = FastAPI(
        title="ai-customer-service",
        version=__version__,
        description="AI customer-service backend: signed webhooks, knowledge-base answers, human handoff.",
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, metrics=ctx.metrics, max_body_bytes=settings.max_body_bytes)
    app.include_router(health_router)
    app.include_router(outbox_router, prefix=API_PREFIX)
    return app
