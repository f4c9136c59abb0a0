"""Admin API for callbacks: ``/api/v1/customer-service/outbox/...`` (admin role)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from ai_customer_service.auth.deps import Actor, require_roles
from ai_customer_service.auth.models import Role
from ai_customer_service.context import AppContext
from ai_customer_service.errors import NotFound
from ai_customer_service.http.deps import app_context, request_id
from ai_customer_service.outbox import service
from ai_customer_service.outbox.events import EventType
from ai_customer_service.outbox.models import OutboxStatus
from ai_customer_service.outbox.repository import EventFilter
from ai_customer_service.outbox.schemas import EventDetailOut, EventList, EventOut, ReplayedOut, ReplayFilter
from ai_customer_service.pagination import PageNumber
from ai_customer_service.values import parse_uuid
from ai_customer_service.wire import Storable

router = APIRouter(prefix="/outbox", tags=["outbox"])


def _event_id(raw: str) -> uuid.UUID:
    """A path's event id; a malformed one names no event (404, like an unknown one)."""
    event_id = parse_uuid(raw)
    if event_id is None:
        raise NotFound("outbox event not found", service.EVENT_NOT_FOUND)
    return event_id


@router.get("/events", response_model=EventList)
async def list_events(
    status: OutboxStatus | None = None,
    destination: Annotated[str | None, Query(max_length=64), Storable] = None,
    session_id: uuid.UUID | None = None,
    type: EventType | None = None,
    page: PageNumber = 1,
    page_size: int = Query(default=50, ge=1, le=500),
    ctx: AppContext = Depends(app_context),
    actor: Actor = Depends(require_roles(Role.ADMIN)),
) -> EventList:
    flt = EventFilter(
        status=status.value if status else None,
        destination=destination,
        session_id=session_id,
        type=type.value if type else None,
    )
    result = await service.list_events(ctx.db, flt, page=page, page_size=page_size)
    return EventList.model_validate(result.model_dump())


@router.get("/events/{event_id}", response_model=EventDetailOut)
async def get_event(
    event_id: str,
    ctx: AppContext = Depends(app_context),
    actor: Actor = Depends(require_roles(Role.ADMIN)),
) -> EventDetailOut:
    return EventDetailOut.model_validate(await service.get_event(ctx.db, _event_id(event_id)))


@router.post("/events/{event_id}/replay", response_model=EventOut)
async def replay_event(
    event_id: str,
    ctx: AppContext = Depends(app_context),
    actor: Actor = Depends(require_roles(Role.ADMIN)),
    rid: str = Depends(request_id),
) -> EventOut:
    replayed = await service.replay_one(ctx.db, _event_id(event_id), actor_id=actor.id, request_id=rid)
    return EventOut.model_validate(replayed)


@router.post("/replay", response_model=ReplayedOut)
async def replay_dead(
    body: ReplayFilter | None = None,
    ctx: AppContext = Depends(app_context),
    actor: Actor = Depends(require_roles(Role.ADMIN)),
    rid: str = Depends(request_id),
) -> ReplayedOut:
    body = body or ReplayFilter()
    flt = EventFilter(
        destination=body.destination,
        session_id=body.session_id,
        type=body.type.value if body.type else None,
    )
    return ReplayedOut.model_validate(
        await service.replay_matching(ctx.db, flt, actor_id=actor.id, request_id=rid)
    )
