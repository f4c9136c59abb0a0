"""Readiness: the database answers within a short timeout and its schema is at the migration head.

Nothing latches: every probe asks the database again, so readiness recovers by itself.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from ai_customer_service.context import AppContext
from ai_customer_service.db.migrate import current_revision, head_revision, is_newer
from ai_customer_service.outbox.delivery import known_destinations
from ai_customer_service.outbox.repository import pending_elsewhere

PROBE_TIMEOUT_SECONDS = 2.0


async def database_component(ctx: AppContext) -> dict[str, Any]:
    async def probe() -> str | None:
        async with ctx.db.engine.connect() as conn:
            return await current_revision(conn)

    try:
        revision = await asyncio.wait_for(probe(), timeout=PROBE_TIMEOUT_SECONDS)
    except TimeoutError:
        return {"status": "DOWN", "error": f"no answer within {PROBE_TIMEOUT_SECONDS:g}s"}
    except (SQLAlchemyError, OSError) as exc:
        return {"status": "DOWN", "error": type(exc).__name__}
    head = head_revision()
    if revision != head:
        if is_newer(revision):  # rolled back onto a newer release's (additive) schema
            return {
                "status": "UP",
                "revision": revision,
                "head": head,
                "note": "schema newer than this build",
            }
        return {"status": "DOWN", "error": "migrations not at head", "revision": revision, "head": head}
    return {"status": "UP", "revision": revision}


async def readiness(ctx: AppContext) -> dict[str, Any]:
    components: dict[str, Any] = {ctx.settings.store_name: await database_component(ctx)}
    if ctx.draining:
        components["server"] = {"status": "DOWN", "error": "shutting down"}
    status = "UP" if all(c["status"] == "UP" for c in components.values()) else "DOWN"
    return {"status": status, "components": components}


def pool_status(ctx: AppContext) -> dict[str, Any]:
    pool: Any = ctx.db.engine.pool
    out: dict[str, Any] = {}
    for name in ("size", "checkedout", "overflow", "checkedin"):
        fn = getattr(pool, name, None)
        if callable(fn):
            out[name] = fn()
    return out


def refresh_pool_metrics(ctx: AppContext) -> None:
    """Set the pool gauges from the pool (on each scrape, and every 15 s: with several server
    processes a scrape reaches one of them, and the others' gauges must not go stale)."""
    pool = pool_status(ctx)
    if "checkedout" in pool:
        ctx.metrics.db_pool_in_use.set(pool["checkedout"])
    if "size" in pool:
        ctx.metrics.db_pool_size.set(pool["size"])


def knowledge_status(ctx: AppContext) -> dict[str, Any]:
    """The bot's knowledge in this process: ``LOADING`` until its first index build (the bot then
    says it is still loading), else ``UP`` with the number of published entries it answers from and
    the operating point it answers at (threshold, source, expected precision and answer rate, and how
    many held-out questions it was fitted on; ``dialog/calibration.py``). Absent for an engine
    without a knowledge base."""
    status = ctx.dialog.knowledge_status()
    return {} if status is None else {"knowledge": status.as_dict()}


def llm_status(ctx: AppContext) -> dict[str, Any]:
    """The optional LLM: ``UP`` while its circuit breaker lets calls through, ``DOWN`` while it is
    open (the bot answers offline meanwhile). Informational: readiness never depends on it, since
    the bot answers without it. Absent when no LLM is configured."""
    status = ctx.dialog.llm_status()
    return {} if status is None else {"llm": status}


async def outbox_status(ctx: AppContext) -> dict[str, Any]:
    """Informational (never changes the overall status): the destinations this process delivers to,
    and ``DEGRADED`` with the counts when pending events wait for a destination it does not know —
    a replica started without a platform's or channel's callback settings. Those events are left for
    a replica that knows them (docs/callbacks.md)."""
    known = known_destinations(ctx.settings)
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_SECONDS), ctx.db.sessionmaker() as tx:
            unknown = await pending_elsewhere(tx, known)
    except (TimeoutError, SQLAlchemyError, OSError):
        return {}  # the database component already says why
    component: dict[str, Any] = {"status": "UP", "destinations": known}
    if unknown:
        component["status"] = "DEGRADED"
        component["unknown_destinations"] = unknown
        component["detail"] = (
            "pending events for destinations this process does not deliver to; they wait for a "
            "replica configured for them (check AI_CS_PLATFORM_<NAME>_* / AI_CS_CHANNEL_<NAME>_CALLBACK_*)"
        )
    return {"outbox": component}
