"""``/console/``: the agent console's pages and form posts.

Handlers parse the form, check the CSRF token, call one existing service (tickets, knowledge base,
outbox, principals) and answer 303 back to the page, or render the page again with the error as a
plain sentence and the error's status (a 409 stays a 409). Customer text is rendered by Jinja with
autoescape on, so it is always text.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles

from ai_customer_service.auth import service as principals
from ai_customer_service.auth import sign_in
from ai_customer_service.auth.sign_in import ConsoleIdentity
from ai_customer_service.console import service
from ai_customer_service.console.i18n import LANG_COOKIE, LANGUAGES, error_sentence
from ai_customer_service.console.web import (
    CSRF_FIELD,
    HERE,
    PATH,
    PRESIGN_COOKIE,
    SESSION_COOKIE,
    CsrfRejected,
    SignInRequired,
    check_csrf,
    check_presign_csrf,
    cookie_secure,
    identity,
    language,
    new_presign_token,
    redirect,
    render,
)
from ai_customer_service.errors import (
    AUTH_PRINCIPAL_NOT_FOUND,
    REQ_AGENT_REQUIRED,
    REQ_INVALID,
    BadRequest,
    Forbidden,
    NotFound,
    RateLimited,
    ServiceError,
)
from ai_customer_service.http.deps import context_of, request_id_of
from ai_customer_service.knowledge import queries as kb_queries
from ai_customer_service.knowledge import service as kb
from ai_customer_service.knowledge.models import EntryStatus
from ai_customer_service.knowledge.schemas import EntryCreate, EntryUpdate
from ai_customer_service.live import RESET, StreamClosed
from ai_customer_service.outbox import service as outbox
from ai_customer_service.outbox.models import OutboxStatus
from ai_customer_service.outbox.repository import EventFilter
from ai_customer_service.ticket import queries as ticket_queries
from ai_customer_service.ticket import service as tickets
from ai_customer_service.ticket.states import Action, Priority, TicketStatus
from ai_customer_service.values import parse_uuid

router = APIRouter(prefix=PATH, include_in_schema=False)

HEARTBEAT_SECONDS = 15.0
WAKE_SECONDS = 1.0
# the events that change what the inbox or a conversation shows
LIVE_TYPES = frozenset(
    {
        "message.received",
        "reply.generated",
        "handoff.triggered",
        "ticket.created",
        "ticket.assigned",
        "ticket.resolved",
        "ticket.closed",
        "ticket.reopened",
        "agent.replied",
        RESET,
    }
)


def install(app: FastAPI) -> None:
    """Mount the console (pages, static assets) and its two error pages."""
    app.include_router(router)
    app.mount(f"{PATH}/static", StaticFiles(directory=HERE / "static"), name="console-static")

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> Response:
        fragment = request.query_params.get("partial") or request.url.path == f"{PATH}/events"
        if request.method == "GET" and not fragment:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return redirect(f"{PATH}/login?{urlencode({'next': target})}")
        return Response(status_code=401, headers={"Cache-Control": "no-store"})

    @app.exception_handler(CsrfRejected)
    async def _csrf(request: Request, exc: CsrfRejected) -> HTMLResponse:
        request.state.error_code = exc.code
        return render(request, "error.html", status_code=403, code=exc.code, sentence_key="csrf_failed")


def _form_text(form: Any, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


async def _form(request: Request, who: ConsoleIdentity | None = None) -> Any:
    form = await request.form()
    if who is not None:
        await check_csrf(request, _form_text(form, CSRF_FIELD))
    return form


def _safe_next(raw: str | None) -> str:
    """Only a path inside the console (no open redirect)."""
    if raw and raw.startswith(f"{PATH}/") and not raw.startswith("//") and "\\" not in raw:
        return raw
    return f"{PATH}/"


# --- sign-in ----------------------------------------------------------------------------------------


def _login_page(request: Request, *, error: str | None = None, status_code: int = 200) -> Response:
    token = request.cookies.get(PRESIGN_COOKIE) or new_presign_token()
    response = render(
        request,
        "login.html",
        status_code=status_code,
        presign=token,
        error=error,
        next=_safe_next(request.query_params.get("next")),
    )
    response.set_cookie(
        PRESIGN_COOKIE, token, httponly=True, samesite="strict", secure=cookie_secure(request), path=PATH
    )
    return response


@router.get("/login")
async def login_form(request: Request) -> Response:
    return _login_page(request)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    check_presign_csrf(request, _form_text(form, CSRF_FIELD))
    ctx = context_of(request)
    try:
        signed = await sign_in.sign_in(
            ctx.db,
            ctx.settings,
            username=_form_text(form, "username"),
            password=_form_text(form, "password"),
            user_agent=request.headers.get("user-agent", ""),
            request_id=request_id_of(request),
        )
    except RateLimited as exc:
        response = _login_page(request, error="too_many_attempts", status_code=429)
        response.headers.update(exc.headers)
        request.state.error_code = exc.code
        return response
    except ServiceError as exc:
        request.state.error_code = exc.code
        return _login_page(request, error="bad_credentials", status_code=exc.status_code)
    response = redirect(_safe_next(_form_text(form, "next")))
    response.set_cookie(
        SESSION_COOKIE,
        signed.token,
        max_age=ctx.settings.console_session_ttl_seconds,
        httponly=True,
        samesite="lax",
        secure=cookie_secure(request),
        path=PATH,
    )
    response.delete_cookie(PRESIGN_COOKIE, path=PATH)
    return response


@router.post("/logout")
async def logout(request: Request, who: ConsoleIdentity = Depends(identity)) -> Response:
    await _form(request, who)
    await sign_in.sign_out(context_of(request).db, request.cookies.get(SESSION_COOKIE, ""))
    response = redirect(f"{PATH}/login")
    response.delete_cookie(SESSION_COOKIE, path=PATH)
    return response


@router.get("/lang")
async def switch_language(request: Request) -> Response:
    """Remember the chosen language (a preference cookie only; nothing on the server changes)."""
    lang = request.query_params.get("to", "")
    response = redirect(_safe_next(request.query_params.get("next")))
    if lang in LANGUAGES:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", path=PATH)
    return response


# --- inbox ------------------------------------------------------------------------------------------


@router.get("")
async def console_root() -> Response:
    return redirect(f"{PATH}/", 307)


def _inbox_query(request: Request) -> service.InboxQuery:
    params = request.query_params
    tab = params.get("tab", "all")
    status = params.get("status", "")
    priority = params.get("priority", "")
    try:
        page = max(1, min(10_000, int(params.get("page", "1"))))
    except ValueError:
        page = 1
    return service.InboxQuery(
        tab=tab if tab in service.TABS else "all",
        status=TicketStatus(status) if status in TicketStatus._value2member_map_ else None,
        priority=Priority(priority) if priority in Priority._value2member_map_ else None,
        channel=(params.get("channel") or "")[:32] or None,
        page=page,
    )


@router.get("/")
async def inbox(request: Request, who: ConsoleIdentity = Depends(identity)) -> Response:
    ctx = context_of(request)
    query = _inbox_query(request)
    page = await service.inbox(ctx.db, who.actor, query, channels=sorted(ctx.settings.channel_names))
    template = "_inbox_rows.html" if request.query_params.get("partial") else "inbox.html"
    return render(
        request,
        template,
        who=who,
        query=query,
        page=page,
        statuses=service.STATUS_ORDER,
        priorities=list(Priority),
        live_url=f"{PATH}/events",
    )


# --- live events ------------------------------------------------------------------------------------


def _last_event_id(request: Request) -> int | None:
    raw = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


@router.get("/events")
async def events(request: Request, who: ConsoleIdentity = Depends(identity)) -> Response:
    """Server-sent events: what changed (type, ticket, session, seq), never the content. The page
    then fetches its own fragment, so what a person sees is always checked by the page itself."""
    ctx = context_of(request)
    hub = ctx.live
    session_id: uuid.UUID | None = None
    ticket_ref = request.query_params.get("ticket")
    if ticket_ref:
        detail = await ticket_queries.get_ticket(ctx.db, tickets.parse_ticket_id(ticket_ref), actor=who.actor)
        session_id = detail.ticket.session_id
    after = _last_event_id(request)
    token = request.cookies.get(SESSION_COOKIE, "")

    async def body() -> AsyncIterator[str]:
        yield "retry: 2000\n\n"
        try:
            async with hub.subscribe(session_id=session_id, after_seq=after) as sub:
                quiet = 0.0
                while not ctx.draining and not await request.is_disconnected():
                    # wake every second: a draining server ends its streams at once (browsers
                    # reconnect with Last-Event-ID, to another replica), not at the next heartbeat
                    event = await sub.next(timeout=WAKE_SECONDS)
                    if event is None:
                        quiet += WAKE_SECONDS
                        if quiet < HEARTBEAT_SECONDS:
                            continue
                        quiet = 0.0
                        if await sign_in.identify(ctx.db, token) is None:  # signed out or revoked
                            yield "event: signed-out\ndata: {}\n\n"
                            return
                        yield ": keep-alive\n\n"
                        continue
                    if event.type not in LIVE_TYPES:
                        continue
                    data = {
                        "seq": event.seq,
                        "type": event.type,
                        "ticket_id": None if event.ticket_id is None else str(event.ticket_id),
                        "session_id": None if event.session_id is None else str(event.session_id),
                    }
                    yield f"id: {event.seq}\ndata: {json.dumps(data)}\n\n"
        except StreamClosed:
            return  # the browser reconnects with Last-Event-ID (to this replica or another)

    return StreamingResponse(
        body(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


# --- one conversation -------------------------------------------------------------------------------


async def _conversation_page(
    request: Request,
    who: ConsoleIdentity,
    ticket_id: uuid.UUID,
    *,
    error: ServiceError | None = None,
    template: str = "ticket.html",
) -> Response:
    ctx = context_of(request)
    view = await service.conversation(ctx.db, ctx.dialog, who.actor, ticket_id)
    lang = language(request)
    return render(
        request,
        template,
        who=who,
        view=view,
        error=error_sentence(lang, error.code, error.message) if error else None,
        error_code=error.code if error else None,
        status_code=error.status_code if error else 200,
        live_url=f"{PATH}/events?ticket={ticket_id}",
    )


def _ticket_id(raw: str) -> uuid.UUID:
    return tickets.parse_ticket_id(raw)


@router.get("/tickets/{ticket_id}")
async def ticket_page(ticket_id: str, request: Request, who: ConsoleIdentity = Depends(identity)) -> Response:
    try:
        template = "_conversation.html" if request.query_params.get("partial") else "ticket.html"
        return await _conversation_page(request, who, _ticket_id(ticket_id), template=template)
    except (NotFound, Forbidden) as exc:
        return _error_page(request, who, exc)


def _error_page(request: Request, who: ConsoleIdentity | None, exc: ServiceError) -> HTMLResponse:
    request.state.error_code = exc.code
    sentence = error_sentence(language(request), exc.code, exc.message)
    return render(
        request, "error.html", who=who, status_code=exc.status_code, code=exc.code, sentence=sentence
    )


def _no_fields(form: Any) -> dict[str, Any]:
    return {}


async def _ticket_action(
    request: Request,
    who: ConsoleIdentity,
    raw_id: str,
    change: Callable[..., Awaitable[object]],
    fields: Callable[[Any], dict[str, Any]] = _no_fields,
    metric: Action | None = None,
    *,
    audited: bool = True,
) -> Response:
    """Run one ticket change of the signed-in agent (``change(store, ticket_id, actor=...,
    request_id=..., **fields(form))``), then show the ticket again, or the page with the error."""
    form = await _form(request, who)
    ticket_id = _ticket_id(raw_id)
    ctx = context_of(request)
    try:
        arguments = {"actor": who.actor, **fields(form)}
        if audited:
            arguments["request_id"] = request_id_of(request)
        await change(ctx.store, ticket_id, **arguments)
    except ServiceError as exc:
        request.state.error_code = exc.code
        try:
            return await _conversation_page(request, who, ticket_id, error=exc)
        except ServiceError as again:
            return _error_page(request, who, again)
    if metric is not None:
        ctx.metrics.ticket_transitions.labels(metric.value).inc()
    return redirect(f"{PATH}/tickets/{ticket_id}")


def _bounded(name: str, limit: int, too_long: str) -> Callable[[Any], dict[str, Any]]:
    """The form's text field ``name`` as the change's argument of that name; 400 when too long."""

    def fields(form: Any) -> dict[str, Any]:
        value = _form_text(form, name)
        if len(value) > limit:
            raise BadRequest(too_long, REQ_INVALID)
        return {name: value}

    return fields


@router.post("/tickets/{ticket_id}/claim")
async def claim(ticket_id: str, request: Request, who: ConsoleIdentity = Depends(identity)) -> Response:
    return await _ticket_action(
        request, who, ticket_id, tickets.assign, lambda form: {"agent_id": who.actor.id}, Action.ASSIGN
    )


@router.post("/tickets/{ticket_id}/assign")
async def assign(ticket_id: str, request: Request, who: ConsoleIdentity = Depends(identity)) -> Response:
    def fields(form: Any) -> dict[str, Any]:
        agent_id = parse_uuid(_form_text(form, "agent_id"))
        if agent_id is None:
            raise BadRequest("choose an agent", REQ_AGENT_REQUIRED)
        return {"agent_id": agent_id}

    return await _ticket_action(request, who, ticket_id, tickets.assign, fields, Action.ASSIGN)


@router.post("/tickets/{ticket_id}/reply")
async def reply(ticket_id: str, request: Request, who: ConsoleIdentity = Depends(identity)) -> Response:
    fields = _bounded("content", 4000, "a reply is at most 4000 characters")
    return await _ticket_action(request, who, ticket_id, tickets.reply, fields)


@router.post("/tickets/{ticket_id}/note")
async def note(ticket_id: str, request: Request, who: ConsoleIdentity = Depends(identity)) -> Response:
    fields = _bounded("body", 10_000, "a note is at most 10000 characters")
    return await _ticket_action(request, who, ticket_id, tickets.add_note, fields, audited=False)


@router.post("/tickets/{ticket_id}/resolve")
async def resolve(ticket_id: str, request: Request, who: ConsoleIdentity = Depends(identity)) -> Response:
    def fields(form: Any) -> dict[str, Any]:
        return {
            "resolution": _form_text(form, "resolution")[:4000],
            "handback_on": context_of(request).settings.ticket_handback_on,
        }

    return await _ticket_action(request, who, ticket_id, tickets.resolve, fields, Action.RESOLVE)


@router.post("/tickets/{ticket_id}/close")
async def close(ticket_id: str, request: Request, who: ConsoleIdentity = Depends(identity)) -> Response:
    def fields(form: Any) -> dict[str, Any]:
        return {"resolution": _form_text(form, "resolution").strip()[:4000] or None}

    return await _ticket_action(request, who, ticket_id, tickets.close, fields, Action.CLOSE)


@router.post("/tickets/{ticket_id}/reopen")
async def reopen(ticket_id: str, request: Request, who: ConsoleIdentity = Depends(identity)) -> Response:
    return await _ticket_action(request, who, ticket_id, tickets.reopen, metric=Action.REOPEN)


# --- knowledge base ---------------------------------------------------------------------------------


def _is_editor(who: ConsoleIdentity) -> bool:
    return who.actor.is_staff


def _lines(raw: str) -> list[str]:
    return [line.strip() for line in raw.splitlines() if line.strip()]


@router.get("/kb")
async def kb_page(request: Request, who: ConsoleIdentity = Depends(identity)) -> Response:
    ctx = context_of(request)
    q = (request.query_params.get("q") or "").strip()[:200]
    ask = (request.query_params.get("ask") or "").strip()[:2000]
    try:
        page = max(1, int(request.query_params.get("page", "1")))
    except ValueError:
        page = 1
    entries = await service.kb_list(ctx.db, query=q, page=page)
    tried = await ctx.dialog.explain(ask, top_k=5) if ask else None
    return render(
        request, "kb.html", who=who, q=q, ask=ask, entries=entries, tried=tried, editor=_is_editor(who)
    )


async def _entry_page(
    request: Request, who: ConsoleIdentity, entry: dict[str, Any] | None, *, error: ServiceError | None = None
) -> Response:
    lang = language(request)
    return render(
        request,
        "kb_entry.html",
        who=who,
        entry=entry,
        editor=_is_editor(who),
        error=error_sentence(lang, error.code, error.message) if error else None,
        status_code=error.status_code if error else 200,
    )


@router.get("/kb/new")
async def kb_new(request: Request, who: ConsoleIdentity = Depends(identity)) -> Response:
    return await _entry_page(request, who, None)


@router.get("/kb/{entry_id}")
async def kb_entry(entry_id: str, request: Request, who: ConsoleIdentity = Depends(identity)) -> Response:
    ctx = context_of(request)
    try:
        found = await kb_queries.find_entry_id(ctx.db, entry_id)
        return await _entry_page(request, who, await service.kb_entry(ctx.db, found))
    except ServiceError as exc:
        return _error_page(request, who, exc)


def _entry_fields(form: Any) -> dict[str, Any]:
    return {
        "title": _form_text(form, "title"),
        "answer": _form_text(form, "answer"),
        "questions": _lines(_form_text(form, "questions")),
        "tags": [t.strip() for t in _form_text(form, "tags").split(",") if t.strip()],
    }


def _validation_error(exc: Exception) -> BadRequest:
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ()))
        return BadRequest(f"{field}: {first.get('msg', 'invalid')}", REQ_INVALID)
    return BadRequest(str(exc), REQ_INVALID)


@router.post("/kb")
async def kb_create(request: Request, who: ConsoleIdentity = Depends(identity)) -> Response:
    form = await _form(request, who)
    ctx = context_of(request)
    if not _is_editor(who):
        return _error_page(request, who, Forbidden("only supervisors and admins may edit the knowledge base"))
    fields = _entry_fields(form)
    try:
        try:
            data = EntryCreate(
                **fields, status=EntryStatus.PUBLISHED if form.get("publish") else EntryStatus.DRAFT
            )
        except ValueError as exc:
            raise _validation_error(exc) from None
        created = await kb.create(ctx.db, data, actor_id=str(who.actor.id))
    except ServiceError as exc:
        request.state.error_code = exc.code
        return await _entry_page(request, who, {**fields, "id": None, "version": 1}, error=exc)
    return redirect(f"{PATH}/kb/{created['id']}")


@router.post("/kb/{entry_id}")
async def kb_update(entry_id: str, request: Request, who: ConsoleIdentity = Depends(identity)) -> Response:
    form = await _form(request, who)
    ctx = context_of(request)
    if not _is_editor(who):
        return _error_page(request, who, Forbidden("only supervisors and admins may edit the knowledge base"))
    fields = _entry_fields(form)
    try:
        found = await kb_queries.find_entry_id(ctx.db, entry_id)
        try:
            version = int(_form_text(form, "version"))
            data = EntryUpdate(
                **fields, version=version, status=EntryStatus.PUBLISHED if form.get("publish") else None
            )
        except ValueError as exc:
            raise _validation_error(exc) from None
        await kb.update_entry(ctx.db, found, data, actor_id=str(who.actor.id))
    except ServiceError as exc:
        request.state.error_code = exc.code
        current = {**fields, "id": entry_id, "version": _form_text(form, "version")}
        return await _entry_page(request, who, current, error=exc)
    return redirect(f"{PATH}/kb/{found}")


# --- supervisor and admin ---------------------------------------------------------------------------


@router.get("/supervisor")
async def supervisor(request: Request, who: ConsoleIdentity = Depends(identity)) -> Response:
    if not who.actor.is_staff:
        return _error_page(request, who, Forbidden("only supervisors and admins may open this page"))
    period = request.query_params.get("period", "7")
    period = period if period in service.PERIODS else "7"
    stats = await service.supervisor(context_of(request).db, period)
    return render(
        request, "supervisor.html", who=who, stats=stats, period=period, periods=list(service.PERIODS)
    )


@router.post("/agents/{principal_id}/availability")
async def availability(
    principal_id: str, request: Request, who: ConsoleIdentity = Depends(identity)
) -> Response:
    form = await _form(request, who)
    target = parse_uuid(principal_id)
    if target is None:
        return _error_page(request, who, NotFound("principal not found", AUTH_PRINCIPAL_NOT_FOUND))
    try:
        await principals.set_availability(
            context_of(request).db,
            target,
            actor=who.actor,
            available=_form_text(form, "available") == "true",
            capacity=None,
        )
    except ServiceError as exc:
        return _error_page(request, who, exc)
    return redirect(f"{PATH}/supervisor")


def _require_admin(who: ConsoleIdentity) -> None:
    if who.actor.role.value != "admin":
        raise Forbidden("only admins may open this page")


@router.get("/admin")
async def admin(request: Request, who: ConsoleIdentity = Depends(identity)) -> Response:
    try:
        _require_admin(who)
    except ServiceError as exc:
        return _error_page(request, who, exc)
    dead = await outbox.list_events(
        context_of(request).db, EventFilter(status=OutboxStatus.DEAD.value), page=1, page_size=100
    )
    return render(request, "admin.html", who=who, dead=dead)


@router.post("/admin/replay")
async def replay(request: Request, who: ConsoleIdentity = Depends(identity)) -> Response:
    form = await _form(request, who)
    ctx = context_of(request)
    try:
        _require_admin(who)
        raw = _form_text(form, "event_id")
        if raw == "all":
            await outbox.replay_matching(
                ctx.db, EventFilter(), actor_id=who.actor.id, request_id=request_id_of(request)
            )
        else:
            event_id = parse_uuid(raw)
            if event_id is None:
                raise NotFound("outbox event not found", outbox.EVENT_NOT_FOUND)
            await outbox.replay_one(
                ctx.db, event_id, actor_id=who.actor.id, request_id=request_id_of(request)
            )
    except ServiceError as exc:
        return _error_page(request, who, exc)
    return redirect(f"{PATH}/admin")
