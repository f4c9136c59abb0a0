"""The application factory: ``create_app(settings)`` wires services, routers, error handlers, workers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from ai_customer_service import __version__
from ai_customer_service.audit.router import router as audit_router
from ai_customer_service.auth.router import router as auth_router
from ai_customer_service.auth.sign_in import purge_sessions
from ai_customer_service.config import Settings
from ai_customer_service.console.router import install as install_console
from ai_customer_service.console.service import log_sign_in_hint
from ai_customer_service.context import AppContext
from ai_customer_service.conversation import service as conversations
from ai_customer_service.conversation.router import router as sessions_router
from ai_customer_service.db.engine import Database
from ai_customer_service.dialog.engine import DialogEngine
from ai_customer_service.health.router import router as health_router
from ai_customer_service.health.service import refresh_pool_metrics
from ai_customer_service.http.auth_throttle import AuthThrottle, AuthThrottleMiddleware
from ai_customer_service.http.deadline import RequestDeadlineMiddleware
from ai_customer_service.http.docs import install_docs
from ai_customer_service.http.errors import install_error_handlers
from ai_customer_service.http.middleware import RequestContextMiddleware
from ai_customer_service.http.openapi import document
from ai_customer_service.knowledge.refresher import KnowledgeRefresher, build_engine
from ai_customer_service.knowledge.router import router as kb_router
from ai_customer_service.live import LiveHub, purge_live_events
from ai_customer_service.logs import get_logger
from ai_customer_service.metrics import Metrics
from ai_customer_service.outbox.publisher import EventPublisher
from ai_customer_service.outbox.router import router as outbox_router
from ai_customer_service.outbox.service import purge_delivered
from ai_customer_service.outbox.worker import OutboxWorker
from ai_customer_service.platform.router import router as platform_router
from ai_customer_service.security import replay as signature_claims
from ai_customer_service.ticket.router import router as ticket_router
from ai_customer_service.ticket.router import sessions as session_changes_router
from ai_customer_service.ticket.service import auto_assign_pending, auto_close_resolved
from ai_customer_service.uow import Store
from ai_customer_service.webhook.rejections import RejectionLog
from ai_customer_service.webhook.router import router as webhook_router
from ai_customer_service.webhook.service import FaultPoints, IngestService
from ai_customer_service.widget.cors import WidgetCorsMiddleware
from ai_customer_service.widget.router import agents as widget_agents
from ai_customer_service.widget.router import assets as widget_assets
from ai_customer_service.widget.router import router as widget_router
from ai_customer_service.widget.service import WidgetService

log = get_logger(__name__)

API_PREFIX = "/api/v1/customer-service"
REJECTION_FLUSH_SECONDS = 60.0
FIRST_INDEX_WAIT_SECONDS = 5.0


def build_context(settings: Settings, db: Database, dialog: DialogEngine | None = None) -> AppContext:
    metrics = Metrics()
    knowledge: KnowledgeRefresher | None = None
    if dialog is None:
        dialog, knowledge = build_engine(settings, db, metrics)
    store = Store(db, EventPublisher(settings))
    ingest = IngestService(
        store=store,
        settings=settings,
        dialog=dialog,
        metrics=metrics,
        faults=FaultPoints(settings.test_faults),
    )
    ctx = AppContext(
        settings=settings,
        db=db,
        metrics=metrics,
        dialog=dialog,
        ingest=ingest,
        store=store,
        rejections=RejectionLog(metrics),
        live=LiveHub(db, poll_interval_seconds=settings.live_poll_interval_ms / 1000),
        knowledge=knowledge,
    )

    async def sweep_sessions() -> None:
        closed = await conversations.sweep_idle(store, idle_seconds=settings.session_idle_timeout_seconds)
        if closed:
            metrics.sessions_closed.labels("timeout").inc(closed)

    async def flush_rejections() -> None:
        await ctx.rejections.flush(db)

    if knowledge is not None:
        ctx.workers.every(settings.kb_refresh_interval_seconds, "kb-index", knowledge.refresh)
    ctx.workers.every(settings.session_sweep_interval_seconds, "session-sweeper", sweep_sessions)
    ctx.workers.every(REJECTION_FLUSH_SECONDS, "rejection-audit", flush_rejections)
    if settings.auto_assign:
        ctx.workers.every(
            settings.auto_assign_interval_seconds, "auto-assign", lambda: auto_assign_pending(store)
        )
    if settings.ticket_auto_close_seconds:
        quiet = settings.ticket_auto_close_seconds
        ctx.workers.every(60.0, "ticket-auto-close", lambda: auto_close_resolved(store, quiet_seconds=quiet))
    outbox = OutboxWorker(settings, db, metrics)
    if settings.outbox_worker_enabled:
        ctx.workers.every(settings.outbox_poll_interval_seconds, "outbox-delivery", outbox.drain)
    ctx.workers.every(15.0, "outbox-metrics", outbox.refresh_metrics)

    async def refresh_pool_gauges() -> None:
        refresh_pool_metrics(ctx)

    ctx.workers.every(15.0, "pool-metrics", refresh_pool_gauges)
    ctx.workers.every(3600.0, "console-sessions", lambda: purge_sessions(db))
    if settings.outbox_retention_days:
        days = settings.outbox_retention_days
        ctx.workers.every(300.0, "outbox-retention", lambda: purge_delivered(db, retention_days=days))
    if settings.dedup_retention_days:
        keep = settings.dedup_retention_days
        ctx.workers.every(
            300.0, "dedup-retention", lambda: conversations.purge_dedup_records(db, retention_days=keep)
        )
    hours = settings.live_retention_hours
    ctx.workers.every(300.0, "live-retention", lambda: purge_live_events(db, retention_hours=hours))
    # v1 signature claims outlive their usefulness after twice the skew window (docs/security.md)
    skew = settings.webhook_max_skew_seconds
    ctx.workers.every(60.0, "signature-claims", lambda: signature_claims.purge(db, max_skew_seconds=skew))
    return ctx


def _log_failure(task: asyncio.Task[bool]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("first knowledge index build failed; the worker retries", exc_info=task.exception())


def create_app(
    settings: Settings, *, db: Database | None = None, dialog: DialogEngine | None = None
) -> FastAPI:
    """Build the ASGI app. The database schema must already be migrated (``serve`` does it first)."""
    owns_db = db is None
    ctx = build_context(settings, db or Database(settings), dialog)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not settings.webhook_secret:
            log.warning("AI_CS_WEBHOOK_SECRET is not set: inbound webhooks are NOT signature-checked")
        if ctx.knowledge is not None:
            # give the first index build a head start so the first customers meet a built index;
            # a slow (cold) build goes on in the background and the bot says it is still loading
            first = asyncio.create_task(ctx.knowledge.refresh())
            first.add_done_callback(_log_failure)
            await asyncio.wait({first}, timeout=FIRST_INDEX_WAIT_SECONDS)
        ctx.workers.start()
        await ctx.live.start()
        log.info("service started", version=__version__, store=settings.store_name, addr=settings.addr)
        await log_sign_in_hint(ctx.db, settings)
        try:
            yield
        finally:
            ctx.draining = True
            await ctx.live.stop()
            await ctx.workers.stop()
            await ctx.rejections.flush(ctx.db)
            await app.state.auth_throttle.flush(ctx.db)
            await ctx.dialog.aclose()
            if owns_db:
                await ctx.db.dispose()
            log.info("service stopped")

    app = FastAPI(
        title="ai-customer-service",
        version=__version__,
        description="AI customer-service backend: signed webhooks, knowledge-base answers, human handoff.",
        lifespan=lifespan,
        # a wrong path is a JSON 404, not a 307 to an absolute http:// URL with an empty body
        redirect_slashes=False,
        docs_url=None,  # served by install_docs with local assets (no CDN)
        redoc_url=None,
        # AI_CS_API_DOCS_ENABLED (off in production unless set): no /openapi.json, /docs, /redoc
        openapi_url="/openapi.json" if settings.docs_enabled else None,
    )
    app.state.ctx = ctx
    app.state.live = ctx.live
    if settings.docs_enabled:
        install_docs(app)
    # the web chat widget (docs/widget.md)
    app.state.widget = widget = WidgetService(db=ctx.db, settings=settings, ingest=ctx.ingest)
    ctx.workers.every(300.0, "widget-counters", widget.purge_counters)
    install_error_handlers(app)
    # repeated failed authentication → 429 (inside the request-context middleware: logged, counted)
    throttle = AuthThrottle(
        limit=settings.auth_failure_limit,
        window_seconds=settings.auth_failure_window_seconds,
        block_seconds=settings.auth_failure_block_seconds,
        exempt=settings.auth_exempt_networks,
        metrics=ctx.metrics,
    )
    app.state.auth_throttle = throttle
    ctx.workers.every(REJECTION_FLUSH_SECONDS, "auth-throttle-audit", lambda: throttle.flush(ctx.db))
    app.add_middleware(AuthThrottleMiddleware, throttle=throttle, prefixes=(API_PREFIX, "/metrics"))
    # added before the request-context middleware, so it runs inside it (the access log sees its 503)
    app.add_middleware(RequestDeadlineMiddleware, seconds=settings.request_timeout_seconds)
    app.add_middleware(RequestContextMiddleware, metrics=ctx.metrics, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(WidgetCorsMiddleware)
    app.include_router(webhook_router, prefix=API_PREFIX)  # first: the most frequent request
    app.include_router(health_router)
    app.include_router(sessions_router, prefix=API_PREFIX)
    app.include_router(session_changes_router, prefix=API_PREFIX)
    app.include_router(auth_router, prefix=API_PREFIX)
    app.include_router(ticket_router, prefix=API_PREFIX)
    app.include_router(audit_router, prefix=API_PREFIX)
    app.include_router(outbox_router, prefix=API_PREFIX)
    app.include_router(platform_router, prefix=API_PREFIX)
    app.include_router(kb_router, prefix=API_PREFIX)
    app.include_router(widget_router, prefix=API_PREFIX)
    app.include_router(widget_agents, prefix=API_PREFIX)
    app.include_router(widget_assets)
    install_console(app)  # /console/: the agent console (pages, assets, sign-in)
    app.openapi = lambda: document(app, settings, API_PREFIX)  # type: ignore[method-assign]
    return app
