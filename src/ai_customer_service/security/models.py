"""``cs_signature_uses``: where each signed request (signature scheme v1) was first used.

A v1 signature covers only ``timestamp.body``; to keep those bytes from being replayed to another
path (another channel, another session's feedback) within the skew window, the first path that
accepted a signature is remembered here, in the database so that it holds across replicas. Rows
older than the skew window can never match a fresh request again and are purged.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ai_customer_service.db.base import Base, UTCDateTime, utcnow


class SignatureUse(Base):
    __tablename__ = "cs_signature_uses"
    __table_args__ = (Index("ix_cs_signature_uses_created_at", "created_at"),)

    # sha256 (hex) of the normalised signature
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    # "POST /api/v1/customer-service/webhook/widget"
    target: Mapped[str] = mapped_column(String(600))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
