"""Who is calling: the authenticated back-office actor (pure value)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from ai_customer_service.auth.models import Role

# The bootstrap admin (``AI_CS_ADMIN_TOKEN``) is not a stored principal; it has this fixed id.
BOOTSTRAP_ADMIN_ID = uuid.UUID("00000000-0000-0000-0000-00000000a0a0")


@dataclass(frozen=True)
class Actor:
    id: uuid.UUID
    name: str
    role: Role
    # how the actor authenticated: "token", "admin_token" or "trusted_headers"
    auth: str = "token"

    @property
    def principal_id(self) -> uuid.UUID | None:
        """The stored principal behind the actor (``None`` for the bootstrap admin token)."""
        return None if self.id == BOOTSTRAP_ADMIN_ID else self.id

    @property
    def is_agent(self) -> bool:
        return self.role is Role.AGENT

    @property
    def is_staff(self) -> bool:
        """Supervisor or admin: may act on any ticket."""
        return self.role in (Role.SUPERVISOR, Role.ADMIN)
