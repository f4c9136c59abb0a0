"""Ticket states, priorities and the allowed-transition table (pure; contract §8)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ai_customer_service.errors import (
    TICKET_ASSIGN_CONFLICT,
    TICKET_CLOSE_CONFLICT,
    TICKET_REOPEN_CONFLICT,
    TICKET_REPLY_CONFLICT,
    TICKET_RESOLVE_CONFLICT,
    Conflict,
)


class TicketStatus(StrEnum):
    OPEN = "open"
    ASSIGNED = "assigned"
    PROCESSING = "processing"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Priority(StrEnum):
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"


# States in which a ticket still needs a human: at most one such ticket per session.
ACTIVE_STATUSES: frozenset[TicketStatus] = frozenset(
    {TicketStatus.OPEN, TicketStatus.ASSIGNED, TicketStatus.PROCESSING}
)


class Action(StrEnum):
    ASSIGN = "assign"
    START = "start"
    RESOLVE = "resolve"
    CLOSE = "close"
    REOPEN = "reopen"


@dataclass(frozen=True)
class Transition:
    sources: frozenset[TicketStatus]
    target: TicketStatus
    conflict_code: str  # the 409 code when the ticket is in any other state


# The whole state machine (contract §8). Anything not listed here is a 409 with the action's code.
TRANSITIONS: dict[Action, Transition] = {
    Action.ASSIGN: Transition(
        frozenset({TicketStatus.OPEN, TicketStatus.ASSIGNED}), TicketStatus.ASSIGNED, TICKET_ASSIGN_CONFLICT
    ),
    Action.START: Transition(
        frozenset({TicketStatus.ASSIGNED}), TicketStatus.PROCESSING, TICKET_REPLY_CONFLICT
    ),
    Action.RESOLVE: Transition(
        frozenset({TicketStatus.ASSIGNED, TicketStatus.PROCESSING}),
        TicketStatus.RESOLVED,
        TICKET_RESOLVE_CONFLICT,
    ),
    Action.CLOSE: Transition(frozenset({TicketStatus.RESOLVED}), TicketStatus.CLOSED, TICKET_CLOSE_CONFLICT),
    Action.REOPEN: Transition(
        frozenset({TicketStatus.RESOLVED, TicketStatus.CLOSED}), TicketStatus.OPEN, TICKET_REOPEN_CONFLICT
    ),
}

# Where an agent may reply to the customer (the first reply on an assigned ticket starts it).
REPLYABLE_STATUSES: frozenset[TicketStatus] = frozenset({TicketStatus.ASSIGNED, TicketStatus.PROCESSING})
REPLY_CONFLICT_CODE = TICKET_REPLY_CONFLICT

_MESSAGES = {
    Action.ASSIGN: "ticket cannot be assigned in state {state}",
    Action.START: "ticket cannot be started in state {state}",
    Action.RESOLVE: "ticket cannot be resolved in state {state}",
    Action.CLOSE: "ticket cannot be closed in state {state}",
    Action.REOPEN: "ticket cannot be reopened in state {state}",
}


def next_status(current: TicketStatus, action: Action) -> TicketStatus:
    """The state ``action`` leads to from ``current``; raises :class:`Conflict` (409) when not allowed."""
    transition = TRANSITIONS[action]
    if current not in transition.sources:
        raise Conflict(_MESSAGES[action].format(state=current.value), transition.conflict_code)
    return transition.target
