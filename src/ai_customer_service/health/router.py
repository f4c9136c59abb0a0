"""``/actuator/health/live``, ``/actuator/health/ready``, ``/actuator/health`` and ``/metrics``."""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from ai_customer_service import __version__
from ai_customer_service.context import AppContext
from ai_customer_service.errors import AUTH_REQUIRED, NotFound, Unauthenticated
from ai_customer_service.health.schemas import Health, Live, Readiness
from ai_customer_service.health.service import (
    knowledge_status,
    llm_status,
    outbox_status,
    pool_status,
    readiness,
    refresh_pool_metrics,
)
from ai_customer_service.http.deps import app_context

router = APIRouter(tags=["health"])


def _answer(body: Readiness) -> JSONResponse:
    """200 when UP, else 503 with the same body (a typed body in a response of its own status)."""
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if body.status == "UP" else 503)


async def live() -> Live:
    return Live()


async def ready(ctx: AppContext = Depends(app_context)) -> JSONResponse:
    return _answer(Readiness.model_validate(await readiness(ctx)))


async def health(ctx: AppContext = Depends(app_context)) -> JSONResponse:
    body: dict[str, Any] = await readiness(ctx)
    body["version"] = __version__
    body["environment"] = ctx.settings.runtime_env.value
    body["components"]["pool"] = {"status": "UP", **pool_status(ctx)}
    body["components"].update(knowledge_status(ctx))  # informational: never changes the overall status
    body["components"].update(llm_status(ctx))  # informational too: the bot answers without the LLM
    if body["status"] == "UP":
        body["components"].update(await outbox_status(ctx))  # informational too
    return _answer(Health.model_validate(body))


# GET and HEAD as two operations with their own ids (one route with both methods gave both the same
# operation id: an invalid OpenAPI document, and a warning written to the log at the first request)
_DOWN: dict[int | str, dict[str, Any]] = {
    503: {"description": "DOWN: the database is unreachable or the service is draining (same body)"}
}
for _path, _endpoint, _model, _summary, _responses in (
    ("/actuator/health/live", live, Live, "Liveness", {}),
    ("/actuator/health/ready", ready, Readiness, "Readiness", _DOWN),
    ("/actuator/health", health, Health, "Health with components, version and environment", _DOWN),
):
    for _method in ("GET", "HEAD"):
        router.add_api_route(
            _path,
            _endpoint,
            methods=[_method],
            operation_id=f"{_endpoint.__name__}_{_method.lower()}",
            response_model=_model,
            summary=_summary,
            responses=_responses,
        )


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, ctx: AppContext = Depends(app_context)) -> Response:
    """Prometheus text; a 404 here when ``AI_CS_METRICS_ADDR`` moves it to its own listener, a 401
    without the ``AI_CS_METRICS_TOKEN`` bearer token when one is set."""
    if ctx.settings.metrics_addr:
        raise NotFound("resource not found")
    if not metrics_token_ok(ctx.settings.metrics_token, request.headers.get("authorization")):
        raise Unauthenticated(
            "metrics require Authorization: Bearer <AI_CS_METRICS_TOKEN>",
            AUTH_REQUIRED,
            headers={"WWW-Authenticate": "Bearer"},
        )
    refresh_pool_metrics(ctx)
    return Response(ctx.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


def metrics_token_ok(token: str, authorization: str | None) -> bool:
    """True when no token is configured, or ``authorization`` is ``Bearer <token>`` (constant time)."""
    if not token:
        return True
    scheme, _, presented = (authorization or "").strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode())
