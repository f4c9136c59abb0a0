"""What the console pages show: read models built on the existing ticket, knowledge-base and outbox
services. Every change the console makes goes through those services (``ticket.service``,
``knowledge.service``, ``outbox.service``, ``auth.service``); nothing here writes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select

from ai_customer_service.auth.actor import Actor
from ai_customer_service.auth.models import Principal, Role
from ai_customer_service.config import Settings
from ai_customer_service.conversation.models import Message, Session
from ai_customer_service.conversation.states import AuthorType, Direction
from ai_customer_service.db.base import utcnow
from ai_customer_service.db.engine import Database
from ai_customer_service.dialog.engine import DialogEngine
from ai_customer_service.knowledge import service as kb
from ai_customer_service.knowledge.models import KBEntry
from ai_customer_service.pagination import Page
from ai_customer_service.ticket import queries as tickets
from ai_customer_service.ticket.models import Ticket
from ai_customer_service.ticket.states import ACTIVE_STATUSES, Priority, TicketStatus

PAGE_SIZE = 50
TABS = ("mine", "unassigned", "all")
# the order of the status filter's options, active ones first
STATUS_ORDER = [
    TicketStatus.OPEN,
    TicketStatus.ASSIGNED,
    TicketStatus.PROCESSING,
    TicketStatus.RESOLVED,
    TicketStatus.CLOSED,
]


@dataclass(frozen=True)
class InboxQuery:
    tab: str = "all"
    status: TicketStatus | None = None
    priority: Priority | None = None
    channel: str | None = None
    page: int = 1


@dataclass(frozen=True)
class InboxRow:
    ticket: Ticket
    assignee_name: str | None
    last_customer_message: str | None
    waiting_seconds: float


@dataclass(frozen=True)
class InboxPage:
    rows: list[InboxRow]
    total: int
    page: int
    pages: int
    channels: list[str]


def _filter(query: InboxQuery, actor: Actor) -> tickets.TicketFilter:
    statuses = [query.status] if query.status else sorted(ACTIVE_STATUSES, key=STATUS_ORDER.index)
    return tickets.TicketFilter(
        statuses=statuses,
        priorities=[query.priority] if query.priority else [],
        assignee=actor.id if query.tab == "mine" else None,
        unassigned=query.tab == "unassigned",
        channel=query.channel or None,
    )


async def inbox(db: Database, actor: Actor, query: InboxQuery, *, channels: list[str]) -> InboxPage:
    """Tickets waiting for a person, priority first then the longest waiting (``GET /tickets`` logic)."""
    page = await tickets.list_tickets(
        db, actor=actor, filters=_filter(query, actor), page=query.page, page_size=PAGE_SIZE
    )
    session_ids = [t.session_id for t in page.items]
    assignee_ids = {t.assignee_id for t in page.items if t.assignee_id is not None}
    last_inbound: dict[uuid.UUID, str] = {}
    names: dict[uuid.UUID, str] = {}
    async with db.reader() as read:
        if session_ids:
            latest = (
                select(Message.session_id, func.max(Message.created_at).label("at"))
                .where(Message.session_id.in_(session_ids), Message.direction == Direction.INBOUND.value)
                .group_by(Message.session_id)
                .subquery()
            )
            rows = await read.execute(
                select(Message.session_id, Message.content).join(
                    latest, and_(Message.session_id == latest.c.session_id, Message.created_at == latest.c.at)
                )
            )
            for session_id, content in rows:
                last_inbound[session_id] = content
        if assignee_ids:
            rows = await read.execute(
                select(Principal.id, Principal.name).where(Principal.id.in_(assignee_ids))
            )
            names = {pid: name for pid, name in rows}
    now = utcnow()
    out = [
        InboxRow(
            ticket=t,
            assignee_name=names.get(t.assignee_id) if t.assignee_id else None,
            last_customer_message=last_inbound.get(t.session_id),
            waiting_seconds=max(0.0, ((t.resolved_at or now) - t.created_at).total_seconds()),
        )
        for t in page.items
    ]
    pages = max(1, -(-page.total // PAGE_SIZE))
    return InboxPage(out, page.total, page.page, pages, channels)


# --- one conversation -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Assist:
    """The bot's best knowledge-base answer for the last customer message (an editable draft)."""

    draft: str
    title: str | None
    confidence: float | None
    kind: str


@dataclass(frozen=True)
class Conversation:
    ticket: Ticket
    session: Session | None
    messages: list[Message]
    notes: list[Any]
    names: dict[str, str]
    agents: list[Principal]
    assist: Assist | None
    allowed: frozenset[str]
    other_tickets: int = 0
    citations: dict[uuid.UUID, list[dict[str, Any]]] = field(default_factory=dict)


def allowed_actions(actor: Actor, ticket: Ticket) -> frozenset[str]:
    """Which action forms to show: those the state machine and the actor's role permit (the
    services check again; this only hides buttons that would surely fail)."""
    status = TicketStatus(ticket.status)
    mine = ticket.assignee_id == actor.id
    out: set[str] = {"note"}
    if status is TicketStatus.OPEN and actor.is_agent:
        out.add("claim")
    if actor.is_staff and status in (TicketStatus.OPEN, TicketStatus.ASSIGNED):
        out.add("assign")
        if status is TicketStatus.OPEN:
            out.add("claim")
    if status in (TicketStatus.ASSIGNED, TicketStatus.PROCESSING) and (mine or actor.is_staff):
        out.update({"reply", "resolve"})
    if status is TicketStatus.RESOLVED and actor.is_staff:
        out.add("close")
    if status in (TicketStatus.RESOLVED, TicketStatus.CLOSED) and actor.is_staff:
        out.add("reopen")
    return frozenset(out)


async def assist_for(dialog: DialogEngine, db: Database, text: str) -> Assist | None:
    """What the bot would answer to ``text`` (the ``/kb/search`` logic); the best entry's answer when
    the bot itself would not answer (a handoff still gets a draft when an entry fits)."""
    explained = await dialog.explain(text, top_k=3)
    decision = explained["decision"]
    if decision["kind"] == "answer" and explained.get("reply"):
        top = explained["candidates"][0] if explained["candidates"] else None
        return Assist(explained["reply"], top["title"] if top else None, decision.get("confidence"), "answer")
    if not explained["candidates"]:
        return None
    top = explained["candidates"][0]
    async with db.reader() as read:
        entry = (await read.execute(select(KBEntry).where(KBEntry.key == top["id"]))).scalar_one_or_none()
    if entry is None:
        return None
    return Assist(entry.answer, entry.title, top["confidence"], str(decision["kind"]))


async def conversation(
    db: Database, dialog: DialogEngine, actor: Actor, ticket_id: uuid.UUID
) -> Conversation:
    detail = await tickets.get_ticket(db, ticket_id, actor=actor)
    ticket = detail.ticket
    async with db.reader() as read:
        session = await read.get(Session, ticket.session_id)
        principals = list((await read.execute(select(Principal))).scalars())
        other = (
            await read.execute(
                select(func.count())
                .select_from(Ticket)
                .where(
                    Ticket.open_id == ticket.open_id, Ticket.channel == ticket.channel, Ticket.id != ticket.id
                )
            )
        ).scalar_one()
    names = {str(p.id): p.name for p in principals}
    agents = [p for p in principals if p.active and p.role == Role.AGENT.value]
    last_customer = next(
        (m for m in reversed(detail.messages) if m.author_type == AuthorType.CUSTOMER.value), None
    )
    allowed = allowed_actions(actor, ticket)
    assist = None
    if last_customer is not None and allowed & {"reply", "claim"}:
        assist = await assist_for(dialog, db, last_customer.content)
    return Conversation(
        ticket=ticket,
        session=session,
        messages=detail.messages,
        notes=detail.notes,
        names=names,
        agents=agents,
        assist=assist,
        allowed=allowed,
        other_tickets=int(other),
    )


# --- start-up ---------------------------------------------------------------------------------------


async def log_sign_in_hint(db: Database, settings: Settings) -> None:
    """Say where the console is, and how to create the first person who can sign in to it."""
    from ai_customer_service.logs import get_logger

    log = get_logger("ai_customer_service.console")
    async with db.reader() as read:
        people = (
            await read.execute(
                select(func.count())
                .select_from(Principal)
                .where(Principal.password_hash.is_not(None), Principal.active.is_(True))
            )
        ).scalar_one()
    host = settings.host if settings.host not in ("", "0.0.0.0") else "127.0.0.1"  # noqa: S104
    url = f"http://{host}:{settings.port}/console/"
    if people:
        log.info("agent console", url=url)
    else:
        log.warning(
            "agent console: nobody can sign in yet; create the first admin with "
            "`ai-customer-service agents create --name admin --role admin --password-stdin`",
            url=url,
        )


# --- knowledge base -------------------------------------------------------------------------------


async def kb_list(db: Database, *, query: str | None, page: int) -> Page[dict[str, Any]]:
    async with db.reader() as read:
        return await kb.list_entries(read, status=None, query=query or None, page=page, page_size=PAGE_SIZE)


async def kb_entry(db: Database, entry_id: uuid.UUID) -> dict[str, Any]:
    async with db.reader() as read:
        return await kb.get_entry(read, entry_id)


# --- supervisor -----------------------------------------------------------------------------------

PERIODS: dict[str, int | None] = {"1": 1, "7": 7, "30": 30, "all": None}


@dataclass(frozen=True)
class AgentLoad:
    principal: Principal
    active_tickets: int


async def supervisor(db: Database, period: str) -> dict[str, Any]:
    """``GET /tickets/stats`` over the period, the bot's answer rate, and each agent's load."""
    days = PERIODS.get(period, 7)
    since: datetime | None = utcnow() - timedelta(days=days) if days else None
    stats = await tickets.ticket_stats(db, created_from=since)
    async with db.reader() as read:
        kind = Message.decision["kind"].as_string()
        conds = [Message.author_type == AuthorType.BOT.value, Message.direction == Direction.OUTBOUND.value]
        if since is not None:
            conds.append(Message.created_at >= since)
        by_kind = {
            str(k): int(n)
            for k, n in await read.execute(select(kind, func.count()).where(*conds).group_by(kind))
            if k is not None
        }
        load_rows = await read.execute(
            select(Ticket.assignee_id, func.count())
            .where(
                Ticket.assignee_id.is_not(None),
                Ticket.status.in_([TicketStatus.ASSIGNED.value, TicketStatus.PROCESSING.value]),
            )
            .group_by(Ticket.assignee_id)
        )
        loads = {assignee: int(n) for assignee, n in load_rows}
        people = list(
            (
                await read.execute(
                    select(Principal).where(Principal.role != Role.ADMIN.value).order_by(Principal.name)
                )
            ).scalars()
        )
    bot_total = sum(by_kind.values())
    stats["bot"] = {
        "replies": bot_total,
        "by_kind": by_kind,
        "answer_rate": round(by_kind.get("answer", 0) / bot_total, 3) if bot_total else None,
    }
    stats["agents"] = [AgentLoad(p, int(loads.get(p.id, 0))) for p in people]
    return stats
