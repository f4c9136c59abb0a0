"""Request and response shapes of the knowledge-base API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator
from pydantic_core import PydanticCustomError

from ai_customer_service.knowledge.models import EntryStatus, KBEntry
from ai_customer_service.pagination import Page
from ai_customer_service.values import rfc3339
from ai_customer_service.wire import RequestModel, Timestamp

MAX_VERSION = 2**31 - 2
"""``version`` is a 32-bit column and an update stores ``version + 1``."""


def _clean_list(values: list[str], limit: int) -> list[str]:
    out: list[str] = []
    for value in values:
        value = value.strip()
        if value and value not in out:
            if len(value) > limit:
                raise PydanticCustomError(
                    "item_too_long", "items must be at most {limit} characters", {"limit": limit}
                )
            out.append(value)
    return out


class EntryFields(RequestModel):
    title: str = Field(min_length=1, max_length=200)
    answer: str = Field(min_length=1, max_length=20_000)
    questions: list[str] = Field(default_factory=list, max_length=5000)
    tags: list[str] = Field(default_factory=list, max_length=50)
    locale: str | None = Field(default=None, max_length=16)

    @field_validator("title", "answer")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise PydanticCustomError("blank", "must not be blank")
        return value

    @field_validator("questions")
    @classmethod
    def _questions(cls, value: list[str]) -> list[str]:
        return _clean_list(value, 1000)

    @field_validator("tags")
    @classmethod
    def _tags(cls, value: list[str]) -> list[str]:
        return _clean_list(value, 64)


class EntryCreate(EntryFields):
    key: str | None = Field(
        default=None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"
    )
    status: EntryStatus = EntryStatus.DRAFT


class EntryUpdate(EntryFields):
    version: int = Field(
        ge=1, le=MAX_VERSION, description="the version you read; a stale one is 409 CS_KB_4091"
    )
    status: EntryStatus | None = None


class SearchRequest(RequestModel):
    query: str = Field(min_length=1, max_length=2000)
    top_k: int = Field(default=5, ge=1, le=20)


class OperatingPointView(BaseModel):
    """Where the bot answers on this KB: ``confidence >= threshold`` (``dialog/calibration.py``)."""

    threshold: float
    source: Literal["self-calibrated", "fallback", "override"] = Field(
        description="fitted on the KB itself, the documented fallback (a KB too small to fit), or the "
        "operator's AI_CS_DIALOG_ANSWER_THRESHOLD"
    )
    target_precision: float | None = Field(description="the answer precision the point was fitted for")
    expected_precision: float | None = Field(description="on the KB's own held-out questions (fitted only)")
    expected_answer_rate: float | None = Field(description="on the KB's own held-out questions (fitted only)")
    positives: int = Field(description="held-out answerable questions the fit used")
    negatives: int = Field(description="held-out unanswerable questions the fit used")
    expected_in_scope_accuracy: float | None = Field(
        default=None, description="answered with their own entry, of the held-out answerable questions"
    )
    expected_out_of_scope_recall: float | None = Field(
        default=None, description="declined, of the held-out unanswerable questions"
    )


class SearchCandidate(BaseModel):
    id: str
    title: str
    confidence: float
    score: float
    components: dict[str, float]


class SearchDecision(BaseModel):
    kind: Literal["answer", "clarify", "handoff"]
    reason: str
    intent: str | None
    entry: str | None
    confidence: float | None
    suggestions: list[str]


class Citation(BaseModel):
    id: str
    title: str


class SearchResponse(BaseModel):
    """``POST /kb/search``: what the bot would do with the message on a fresh conversation."""

    query: str
    language: str
    rule: str | None = Field(description="the handoff rule that matched, if any")
    candidates: list[SearchCandidate]
    decision: SearchDecision
    citations: list[Citation]
    reply: str
    answer_threshold: float
    operating_point: OperatingPointView | None = Field(
        description="the operating point the bot answers at (null while the index is still loading)"
    )
    latency_ms: float


def entry_view(entry: KBEntry) -> dict[str, Any]:
    return {
        "id": str(entry.id),
        "key": entry.key,
        "title": entry.title,
        "answer": entry.answer,
        "questions": list(entry.questions or []),
        "tags": list(entry.tags or []),
        "locale": entry.locale,
        "status": entry.status,
        "version": entry.version,
        "created_at": rfc3339(entry.created_at),
        "updated_at": rfc3339(entry.updated_at),
        "published_at": rfc3339(entry.published_at) if entry.published_at else None,
    }


class EntryOut(BaseModel):
    id: str
    key: str
    title: str
    answer: str
    questions: list[str]
    tags: list[str]
    locale: str | None
    status: str
    version: int
    created_at: Timestamp
    updated_at: Timestamp
    published_at: Timestamp | None


class EntryList(Page[EntryOut]):
    """One page of entries, by title."""


class ImportOut(BaseModel):
    created: int
    updated: int
    unchanged: int
