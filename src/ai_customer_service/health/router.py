"""``/actuator/health/live``, ``/actuator/health/ready``, ``/actuator/health`` and ``/metrics``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from ai_customer_service import __version__
from ai_customer_service.context import AppContext
from ai_customer_service.health.service import (
    knowledge_status,
    llm_status,
    pool_status,
    readiness,
    refresh_pool_metrics,
)
from ai_customer_service.http.deps import app_context

router = APIRouter(tags=["health"])


@router.api_route("/actuator/health/live", methods=["GET", "HEAD"])
async def live() -> dict[str, str]:
    return {"status": "UP"}


@router.api_route("/actuator/health/ready", methods=["GET", "HEAD"])
async def ready(ctx: AppContext = Depends(app_context)) -> JSONResponse:
    body = await readiness(ctx)
    return JSONResponse(body, status_code=200 if body["status"] == "UP" else 503)


@router.api_route("/actuator/health", methods=["GET", "HEAD"])
async def health(ctx: AppContext = Depends(app_context)) -> JSONResponse:
    body: dict[str, Any] = await readiness(ctx)
    body["version"] = __version__
    body["environment"] = ctx.settings.runtime_env.value
    body["components"]["pool"] = {"status": "UP", **pool_status(ctx)}
    body["components"].update(knowledge_status(ctx))  # informational: never changes the overall status
    body["components"].update(llm_status(ctx))  # informational too: the bot answers without the LLM
    return JSONResponse(body, status_code=200 if body["status"] == "UP" else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics(ctx: AppContext = Depends(app_context)) -> Response:
    refresh_pool_metrics(ctx)
    return Response(ctx.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
