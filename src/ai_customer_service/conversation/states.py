"""A conversation's life cycle as data: its states, the allowed transitions, and the message
enumerations (pure).

```
              hand_off (a ticket is opened or reopened)
   ┌──────┐ ─────────────────────────────────────────► ┌─────────┐
   │ idle │                                            │ handoff │ ◄─┐ hand_off again (its
   │ (bot)│ ◄───────────────────────────────────────── └─────────┘ ──┘ ticket is gone)
   └──────┘   hand_back (no ticket needs a human any more)  │
      │ time_out (quiet too long) / close (staff)           │ close (staff, no active ticket)
      ▼                                                     ▼
   ┌────────────────────────────────────────────────────────────┐
   │ closed (terminal: the customer's next message opens a new  │
   │ session)                                                   │
   └────────────────────────────────────────────────────────────┘
```

``processing`` and ``waiting_feedback`` are values of the original Go service that nothing here sets
any more: rows adopted from it (``db/adopt.py``) may still carry ``waiting_feedback``, so the
database keeps accepting both, and they mean what ``idle`` means — the bot owns the conversation.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ai_customer_service.errors import Conflict


class SessionStatus(StrEnum):
    IDLE = "idle"  # the bot owns the conversation
    PROCESSING = "processing"  # legacy (the original's), means idle; never set
    WAITING_FEEDBACK = "waiting_feedback"  # legacy (the original's), means idle; never set
    HANDOFF = "handoff"  # a human owns it (a ticket needs one); the bot stays silent
    CLOSED = "closed"  # terminal


# The states in which the bot owns the conversation (``idle`` and the legacy values).
BOT_STATUSES: frozenset[SessionStatus] = frozenset(
    {SessionStatus.IDLE, SessionStatus.PROCESSING, SessionStatus.WAITING_FEEDBACK}
)
OPEN_STATUSES: frozenset[SessionStatus] = BOT_STATUSES | {SessionStatus.HANDOFF}


class SessionAction(StrEnum):
    HAND_OFF = "hand_off"  # a ticket was opened (handoff decision, manual handoff) or reopened
    HAND_BACK = "hand_back"  # no ticket needs a human any more: the bot answers again
    CLOSE = "close"  # closed by staff
    TIME_OUT = "time_out"  # quiet for longer than AI_CS_SESSION_IDLE_TIMEOUT_SECONDS


@dataclass(frozen=True)
class Transition:
    sources: frozenset[SessionStatus]
    target: SessionStatus
    conflict_code: str  # the 409 code when the session is in any other state
    message: str

    @property
    def changing(self) -> frozenset[SessionStatus]:
        """The sources the transition actually changes (a conditional update writes only these)."""
        return self.sources - {self.target}


# The whole life cycle. Anything not listed here is refused (409 with the action's code) or, for a
# conditional change applied on the side of another change (a ticket closed, reopened), not applied.
TRANSITIONS: dict[SessionAction, Transition] = {
    SessionAction.HAND_OFF: Transition(
        OPEN_STATUSES, SessionStatus.HANDOFF, "CS_SES_4091", "session is closed"
    ),
    SessionAction.HAND_BACK: Transition(
        frozenset({SessionStatus.HANDOFF}), SessionStatus.IDLE, "CS_SES_4091", "session is not with a human"
    ),
    SessionAction.CLOSE: Transition(
        OPEN_STATUSES, SessionStatus.CLOSED, "CS_SES_4091", "session is already closed"
    ),
    SessionAction.TIME_OUT: Transition(
        BOT_STATUSES, SessionStatus.CLOSED, "CS_SES_4091", "only a session the bot owns times out"
    ),
}


def next_status(current: SessionStatus | str, action: SessionAction) -> SessionStatus:
    """The state ``action`` leads to from ``current``; raises :class:`Conflict` (409) when not allowed."""
    transition = TRANSITIONS[action]
    if SessionStatus(current) not in transition.sources:
        raise Conflict(transition.message, transition.conflict_code)
    return transition.target


def can_transition(current: SessionStatus | str, target: SessionStatus | str) -> bool:
    """Whether some action leads from ``current`` to ``target`` (staying put is not a transition,
    except a handoff handed off again)."""
    current, target = SessionStatus(current), SessionStatus(target)
    return any(current in t.sources and t.target is target for t in TRANSITIONS.values())


def bot_owns(status: SessionStatus | str) -> bool:
    return SessionStatus(status) in BOT_STATUSES


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class AuthorType(StrEnum):
    CUSTOMER = "customer"
    BOT = "bot"
    AGENT = "agent"
    SYSTEM = "system"
