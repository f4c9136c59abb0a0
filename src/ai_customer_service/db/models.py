"""Imports every model so that ``Base.metadata`` is complete (Alembic, tests)."""

from ai_customer_service.audit.models import AuditLog
from ai_customer_service.auth.models import Principal
from ai_customer_service.conversation.models import Feedback, Message, MessageDedup, Session
from ai_customer_service.db.base import Base
from ai_customer_service.db.schema_versions import SchemaMigration
from ai_customer_service.knowledge.models import KBEmbedding, KBEntry
from ai_customer_service.live.models import LiveEventRow
from ai_customer_service.outbox.models import OutboxAttempt, OutboxEvent
from ai_customer_service.security.models import SignatureUse
from ai_customer_service.ticket.models import Ticket, TicketNote
from ai_customer_service.widget.models import WidgetCounter, WidgetKey, WidgetSite

metadata = Base.metadata

__all__ = [
    "AuditLog",
    "Feedback",
    "KBEmbedding",
    "KBEntry",
    "LiveEventRow",
    "Message",
    "MessageDedup",
    "OutboxAttempt",
    "OutboxEvent",
    "Principal",
    "SchemaMigration",
    "Session",
    "SignatureUse",
    "Ticket",
    "TicketNote",
    "WidgetCounter",
    "WidgetKey",
    "WidgetSite",
    "metadata",
]
