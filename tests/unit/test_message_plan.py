"""The pure planning step of one customer message (``webhook/plan.py``): no database, no clock."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from ai_customer_service.conversation.repository import OpenSession
from ai_customer_service.dialog.engine import Analysis, Decision, DecisionKind
from ai_customer_service.outbox.events import EventType
from ai_customer_service.security.replay import SignatureBinding
from ai_customer_service.ticket.states import Priority
from ai_customer_service.webhook.facts import MessageState
from ai_customer_service.webhook.plan import (
    OPEN_ID_KEY,
    Duplicate,
    MessageFacts,
    NeedsAnalysis,
    OverLimit,
    Plan,
    plan_message,
)
from ai_customer_service.webhook.schemas import InboundMessage

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
ANALYSIS = Analysis(text="hi", content_type="text", language="en", rule=None, latency_ms=5.0)
ANSWER = Decision(DecisionKind.ANSWER, "Hello!", reason="kb", intent="greeting", confidence=0.9)
HANDOFF = Decision(
    DecisionKind.HANDOFF,
    "A human will help",
    reason="rule:complaint",
    intent="complaint",
    priority=Priority.P1,
)
LOW = Decision(DecisionKind.CLARIFY, "Could you say more?", reason="low", low_confidence=True)


def message(**changes: object) -> InboundMessage:
    base = InboundMessage(
        channel="web",
        open_id="u-1",
        content="hi",
        content_type="text",
        message_id="m-1",
        user_id=None,
        sent_at=None,
        reply_to=None,
        truncated=False,
        original_length=2,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def facts(
    *,
    status: str = "idle",
    streak: int = 0,
    analysis: Analysis | None = ANALYSIS,
    rate_limit: int = 0,
    signature: SignatureBinding | None = None,
    msg: InboundMessage | None = None,
    **state: object,
) -> MessageFacts:
    session = OpenSession(
        id=uuid.uuid4(),
        channel="web",
        open_id="u-1",
        user_id=None,
        platform=None,
        status=status,
        low_confidence_streak=streak,
        last_message_at=NOW,
    )
    read = MessageState(
        duplicate_response=None,
        recent_inbound=0,
        oldest_inbound=None,
        active_ticket_id=None,
        latest_ticket_status=None,
    )
    return MessageFacts(
        message=msg or message(),
        source="",
        request_id="req-1",
        now=NOW,
        session=session,
        state=replace(read, **state),  # type: ignore[arg-type]
        rate_limit=rate_limit,
        rate_limit_window_seconds=60,
        analysis=analysis,
        signature=signature,
    )


def deciding(decision: Decision) -> object:
    calls: list[int] = []

    def decide(analysis: Analysis, streak: int) -> tuple[Decision, float]:
        calls.append(streak)
        return decision, analysis.latency_ms + 1.0

    decide.calls = calls  # type: ignore[attr-defined]
    return decide


def planned(f: MessageFacts, decision: Decision = ANSWER) -> Plan:
    result = plan_message(f, deciding(decision))  # type: ignore[arg-type]
    assert isinstance(result, Plan)
    return result


def types(plan: Plan) -> list[EventType]:
    return [e.type for e in plan.events]


def test_a_duplicate_is_answered_from_its_record_before_any_rate_limit() -> None:
    stored = {"received": True, "reply": "Hello!"}
    f = facts(duplicate_response=stored, rate_limit=1, recent_inbound=5)
    assert plan_message(f, deciding(ANSWER)) == Duplicate(stored)  # type: ignore[arg-type]


def test_over_the_limit_waits_until_the_oldest_message_leaves_the_window() -> None:
    f = facts(rate_limit=3, recent_inbound=3, oldest_inbound=NOW - timedelta(seconds=45))
    assert plan_message(f, deciding(ANSWER)) == OverLimit(15.0)  # type: ignore[arg-type]
    f = facts(rate_limit=3, recent_inbound=3, oldest_inbound=NOW - timedelta(seconds=60))
    assert plan_message(f, deciding(ANSWER)) == OverLimit(1.0)  # type: ignore[arg-type]
    assert isinstance(planned(facts(rate_limit=3, recent_inbound=2)), Plan)


def test_the_bot_answers_an_idle_conversation() -> None:
    plan = planned(facts())
    assert plan.session_status == "idle" and plan.low_confidence_streak == 0
    assert types(plan) == [EventType.MESSAGE_RECEIVED, EventType.INTENT_RESOLVED, EventType.REPLY_GENERATED]
    assert [m["author_type"] for m in plan.messages] == ["customer", "bot"]
    assert plan.messages[1]["reply_to"] == str(plan.messages[0]["id"])
    assert plan.messages[1]["created_at"] > plan.messages[0]["created_at"]
    assert plan.response == {
        "received": True,
        "session_id": plan.response["session_id"],
        "message_id": str(plan.messages[0]["id"]),
        "reply": "Hello!",
        "intent": "greeting",
        "confidence": 0.9,
        "handoff": False,
        "ticket_id": "",
        "citations": [],
        "duplicate": False,
    }
    assert plan.dedup_response == {**plan.response, OPEN_ID_KEY: "u-1"}
    assert plan.audit["details"]["decision"] == "kb" and plan.audit["after_state"]["reply"] == "Hello!"
    assert plan.outcome == "answer" and plan.latency_ms == 6.0 and plan.handoff_reason is None
    assert plan.new_ticket is None and plan.reopen_ticket_id is None and plan.signature_use is None


def test_a_message_without_a_dedup_key_keeps_no_dedup_record() -> None:
    assert planned(facts(msg=message(message_id=None))).dedup_response is None


def test_low_confidence_counts_and_an_answer_resets_the_streak() -> None:
    assert planned(facts(streak=1), LOW).low_confidence_streak == 2
    assert planned(facts(streak=2), ANSWER).low_confidence_streak == 0


def test_a_handoff_decision_opens_a_ticket_and_hands_the_conversation_to_a_human() -> None:
    plan = planned(facts(streak=2), HANDOFF)
    ticket = plan.new_ticket
    assert ticket is not None and ticket.reason == "complaint" and ticket.priority == "P1"
    assert ticket.status == "open" and ticket.subject == "hi"
    assert ticket.context["trigger_message_id"] == str(plan.messages[0]["id"])
    assert plan.session_status == "handoff" and plan.low_confidence_streak == 0
    assert types(plan) == [
        EventType.MESSAGE_RECEIVED,
        EventType.INTENT_RESOLVED,
        EventType.HANDOFF_TRIGGERED,
        EventType.TICKET_CREATED,
        EventType.REPLY_GENERATED,
    ]
    assert [e.ticket_id for e in plan.events[2:]] == [ticket.id] * 3
    assert plan.response["handoff"] is True and plan.response["ticket_id"] == str(ticket.id)
    assert plan.outcome == "handoff" and plan.handoff_reason == "rule:complaint"


def test_a_human_owned_conversation_keeps_the_bot_silent_without_deciding() -> None:
    ticket = uuid.uuid4()
    decide = deciding(ANSWER)
    result = plan_message(facts(status="handoff", analysis=None, active_ticket_id=ticket), decide)  # type: ignore[arg-type]
    assert isinstance(result, Plan)
    assert decide.calls == []  # type: ignore[attr-defined]
    assert result.session_status == "handoff" and result.decision is None
    assert types(result) == [EventType.MESSAGE_RECEIVED]
    assert [m["author_type"] for m in result.messages] == ["customer"]
    assert result.response["intent"] == "handoff_pending" and result.response["ticket_id"] == str(ticket)
    assert result.audit["details"]["decision"] == "bot_silent_handoff" and result.outcome == "to_agent"


def test_a_message_soon_after_resolution_reopens_the_ticket() -> None:
    ticket = uuid.uuid4()
    plan = planned(facts(latest_ticket_status="resolved", reopenable_ticket_id=ticket))
    assert plan.reopen_ticket_id == ticket and plan.session_status == "handoff"
    assert types(plan) == [EventType.MESSAGE_RECEIVED, EventType.TICKET_REOPENED]
    assert plan.events[1].data == {"status": "open", "reason": "customer_message"}
    assert plan.response["ticket_id"] == str(ticket) and plan.decision is None


def test_a_resolved_ticket_past_the_window_gives_the_conversation_back_to_the_bot() -> None:
    plan = planned(facts(status="handoff", latest_ticket_status="resolved"))
    assert plan.reopen_ticket_id is None and plan.session_status == "idle"
    assert plan.audit["details"]["session_status_before"] == "handoff"
    assert plan.audit["details"]["session_status_after"] == "idle"
    # only the latest ticket being resolved reopens one
    plan = planned(facts(latest_ticket_status="closed", reopenable_ticket_id=uuid.uuid4()))
    assert plan.reopen_ticket_id is None and plan.decision is not None


def test_the_bot_needs_the_analysis_when_it_owns_the_conversation_after_all() -> None:
    result = plan_message(facts(status="handoff", analysis=None), deciding(ANSWER))  # type: ignore[arg-type]
    assert result == NeedsAnalysis()


@pytest.mark.parametrize("status", ["processing", "waiting_feedback"])
def test_the_original_legacy_states_are_the_bots(status: str) -> None:
    assert planned(facts(status=status)).session_status == status
    assert planned(facts(status=status), HANDOFF).session_status == "handoff"


def test_a_truncated_message_and_a_signature_claim() -> None:
    binding = SignatureBinding(digest="d" * 64, target="POST /api/v1/customer-service/webhook")
    plan = planned(facts(msg=message(truncated=True, original_length=9000), signature=binding))
    assert plan.audit["code"] == "CS_REQ_4003" and plan.audit["details"]["original_length"] == 9000
    assert plan.signature_use == {"digest": binding.digest, "target": binding.target, "created_at": NOW}
