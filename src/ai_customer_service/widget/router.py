"""The public widget API (``/widget/{site_key}/...``), ``/widget.js`` and the ``/demo/`` page.

Every widget call names its site in the path, comes from one of the site's origins (checked on
every call, preflights included) and, past the start, carries the visitor token in
``X-CS-Visitor-Token``. Routers parse and call one service function.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, StreamingResponse

from ai_customer_service.auth.deps import Actor, require_roles
from ai_customer_service.auth.models import Role
from ai_customer_service.context import AppContext
from ai_customer_service.conversation import queries as conversation_queries
from ai_customer_service.conversation.service import parse_session_id
from ai_customer_service.errors import (
    HTTP_NOT_FOUND,
    REQ_FEEDBACK_SCORE,
    WGT_ORIGIN,
    BadRequest,
    Forbidden,
    NotFound,
)
from ai_customer_service.http.deps import app_context, request_id
from ai_customer_service.widget import tokens
from ai_customer_service.widget.cors import ALLOWED_HEADERS, STATE_KEY
from ai_customer_service.widget.schemas import (
    AgentTypingRequest,
    FeedbackRequest,
    History,
    Rated,
    SendRequest,
    Sent,
    Started,
    StartRequest,
    TypingRequest,
    TypingSent,
)
from ai_customer_service.widget.service import DEMO_SITE_KEY, Site, WidgetService, normalize_origin
from ai_customer_service.widget.stream import TypingThrottle, parse_last_event_id, session_stream, typing

STATIC = Path(__file__).parent / "static"
TOKEN_HEADER = "X-CS-Visitor-Token"  # noqa: S105 - a header name

_ENVELOPE = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "`CS_WGT_4011` visitor token missing", "content": _ENVELOPE},
    403: {
        "description": "`CS_WGT_4031` site revoked, `CS_WGT_4032` origin missing or not allowed, "
        "`CS_WGT_4033` visitor token invalid, `CS_WGT_4034` token of another site, `CS_WGT_4035` identity "
        "not verified",
        "content": _ENVELOPE,
    },
    404: {
        "description": "`CS_WGT_4041` unknown site key, `CS_WGT_4042` not the visitor's conversation",
        "content": _ENVELOPE,
    },
    429: {
        "description": "`CS_WGT_4291` site limit, `CS_SES_4002` customer limit (`Retry-After`)",
        "content": _ENVELOPE,
    },
}
router = APIRouter(prefix="/widget/{site_key}", tags=["widget"], responses=_ERRORS)
assets = APIRouter(tags=["widget"])
agents = APIRouter(prefix="/sessions", tags=["widget"])
staff = require_roles(Role.AGENT, Role.SUPERVISOR, Role.ADMIN)
_typing = TypingThrottle()


def widget_service(request: Request) -> WidgetService:
    service: WidgetService = request.app.state.widget
    return service


def request_origin(request: Request) -> str:
    """The calling page's origin. Browsers omit ``Origin`` only on same-origin GETs, which they mark
    ``Sec-Fetch-Site: same-origin``; anything else without it is refused."""
    origin = request.headers.get("origin")
    if not origin and request.headers.get("sec-fetch-site") == "same-origin":
        origin = f"{request.url.scheme}://{request.url.netloc}"
    if not origin or origin == "null":
        raise Forbidden("the Origin header is required", WGT_ORIGIN)
    try:
        return normalize_origin(origin)
    except ValueError as exc:
        raise Forbidden("the Origin header is not a valid origin", WGT_ORIGIN) from exc


async def widget_site(site_key: str, request: Request) -> Site:
    """The site of the path, if the request comes from one of its origins (then CORS allows it)."""
    site = await widget_service(request).site(site_key)
    origin = request_origin(request)
    if origin not in site.origins:
        raise Forbidden(f"origin {origin} may not use this site's widget", WGT_ORIGIN)
    setattr(request.state, STATE_KEY, request.headers.get("origin") or origin)
    return site


async def widget_visitor(
    request: Request,
    site: Site = Depends(widget_site),
    token: str | None = Header(None, alias=TOKEN_HEADER, description="the visitor token from the start"),
) -> tokens.Visitor:
    return await widget_service(request).visitor(site, token)


@router.options("/{path:path}", include_in_schema=False)
async def preflight(site: Site = Depends(widget_site)) -> Response:
    return Response(
        status_code=204,
        headers={
            "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": "600",
        },
    )


@router.post("/conversation", response_model=Started)
async def start(
    request: Request,
    body: StartRequest | None = None,
    site: Site = Depends(widget_site),
    token: str | None = Header(None, alias=TOKEN_HEADER),
) -> Started:
    """Start or resume: the visitor token (new, or the one sent), the current session and history."""
    started = await widget_service(request).start(
        site,
        token=token,
        user_id=body.user_id if body else None,
        user_hash=body.user_hash if body else None,
    )
    return Started.model_validate(started)


@router.get("/messages", response_model=History)
async def history(
    request: Request, site: Site = Depends(widget_site), visitor: tokens.Visitor = Depends(widget_visitor)
) -> History:
    """The visitor's latest messages (over all their conversations), oldest first."""
    return History.model_validate(await widget_service(request).history(site, visitor))


@router.post("/messages", response_model=Sent)
async def send(
    body: SendRequest,
    request: Request,
    site: Site = Depends(widget_site),
    visitor: tokens.Visitor = Depends(widget_visitor),
    rid: str = Depends(request_id),
) -> Sent:
    """Send one message; the bot's answer (if it answers) is in ``messages`` and on the stream."""
    sent = await widget_service(request).send(
        site, visitor, client_message_id=body.client_message_id, content=body.content, request_id=rid
    )
    return Sent.model_validate(sent)


@router.post("/feedback", response_model=Rated)
async def feedback(
    body: FeedbackRequest,
    request: Request,
    site: Site = Depends(widget_site),
    visitor: tokens.Visitor = Depends(widget_visitor),
    rid: str = Depends(request_id),
) -> Rated:
    """CSAT of one of the visitor's conversations (a new rating replaces the previous one)."""
    if not 1 <= body.score <= 5:
        raise BadRequest("feedback score must be between 1 and 5", REQ_FEEDBACK_SCORE)
    rated = await widget_service(request).feedback(
        site, visitor, session_id=body.session_id, score=body.score, comment=body.comment, request_id=rid
    )
    return Rated.model_validate(rated)


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "server-sent events"}},
)
async def stream(
    request: Request,
    session_id: str = Query(max_length=64, description="the visitor's session (from the start or a send)"),
    last_event_id: str | None = Header(None, alias="Last-Event-ID", max_length=20),
    site: Site = Depends(widget_site),
    visitor: tokens.Visitor = Depends(widget_visitor),
) -> StreamingResponse:
    """Live events of the visitor's session: ``message`` (the visitor's, the bot's, an agent's),
    ``agent_joined``, ``handoff``, ``typing`` ({active}), ``status`` ({status}), ``ready`` and
    ``reset``. Each event's ``id`` resumes the stream as ``Last-Event-ID``."""
    owned = await widget_service(request).owned_session(site, visitor, session_id)
    return session_stream(request, request.app.state.live, owned, parse_last_event_id(last_event_id))


@router.post("/typing", status_code=202, response_model=TypingSent)
async def visitor_typing(
    body: TypingRequest,
    request: Request,
    site: Site = Depends(widget_site),
    visitor: tokens.Visitor = Depends(widget_visitor),
) -> TypingSent:
    """The visitor is typing (shown to the agents' consoles); throttled per session."""
    owned = await widget_service(request).owned_session(site, visitor, body.session_id)
    sent = await typing(request.app.state.live, _typing, owned, author="customer", active=body.active)
    return TypingSent(sent=sent)


@agents.post("/{session_id}/typing", status_code=202, response_model=TypingSent)
async def agent_typing(
    session_id: str,
    request: Request,
    body: AgentTypingRequest | None = None,
    ctx: AppContext = Depends(app_context),
    actor: Actor = Depends(staff),
) -> TypingSent:
    """An agent is writing to the customer (the widget shows "Agent is writing…"); throttled."""
    target = parse_session_id(session_id)
    await conversation_queries.require_session(ctx.db, target)
    active = body.active if body else True
    sent = await typing(ctx.live, _typing, target, author="agent", active=active, name=actor.name)
    return TypingSent(sent=sent)


@assets.get("/widget.js", include_in_schema=False)
async def widget_js() -> FileResponse:
    return FileResponse(
        STATIC / "widget.js",
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"},
    )


@assets.get("/demo/", include_in_schema=False)
async def demo(ctx: AppContext = Depends(app_context)) -> HTMLResponse:
    if ctx.settings.is_production or not ctx.settings.demo_kb:
        raise NotFound("the demo page is served in development with AI_CS_DEMO_KB=true", HTTP_NOT_FOUND)
    html = (STATIC / "demo.html").read_text("utf-8").replace("{{SITE_KEY}}", DEMO_SITE_KEY)
    return HTMLResponse(html)
