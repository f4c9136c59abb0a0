"""Request and response bodies of the public widget API (what a visitor's browser sends and sees)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ai_customer_service.wire import RequestModel, Timestamp


class StartRequest(RequestModel):
    user_id: str | None = Field(None, max_length=64, description="the host site's signed-in user id")
    user_hash: str | None = Field(
        None,
        max_length=128,
        description="hex HMAC-SHA256(site identity secret, user_id), from the host's server",
    )


class SendRequest(RequestModel):
    client_message_id: str = Field(
        max_length=64,
        description="the browser's id of this message: a retry with the same id is answered once",
    )
    content: str = Field(description="the message text (at most AI_CS_MAX_CONTENT_CHARS characters)")


class TypingRequest(RequestModel):
    session_id: str = Field(max_length=64)
    active: bool = True


class AgentTypingRequest(RequestModel):
    active: bool = True


class FeedbackRequest(RequestModel):
    session_id: str = Field(max_length=64)
    score: int = Field(description="1 (bad) to 5 (great)")
    comment: str | None = Field(None, max_length=2000)


class Citation(BaseModel):
    id: str
    title: str


class WidgetMessage(BaseModel):
    """What a visitor sees of a message: never intents, scores, decisions or internal ids."""

    id: str
    session_id: str | None
    author: str = Field(description="customer, bot, agent or system")
    author_name: str | None
    content: str
    citations: list[Citation]
    choices: list[str] = Field(description='a clarifying reply\'s "did you mean" titles')
    created_at: Timestamp | None


class WidgetSession(BaseModel):
    id: str
    status: str
    with_agent: bool
    closed: bool


class SiteOut(BaseModel):
    name: str


class History(BaseModel):
    session: WidgetSession | None = Field(description="the visitor's latest conversation, if any")
    messages: list[WidgetMessage] = Field(
        description="the latest messages over all conversations, oldest first"
    )


class Started(History):
    visitor_token: str = Field(description="send it as X-CS-Visitor-Token on every later call")
    site: SiteOut


class Sent(BaseModel):
    duplicate: bool
    handoff: bool
    session: WidgetSession | None
    messages: list[WidgetMessage]


class Rated(BaseModel):
    session_id: str
    score: int
    comment: str | None


class TypingSent(BaseModel):
    sent: bool = Field(description="false when throttled (the last one is recent enough)")
