"""Optional grounded answers from an OpenAI-compatible chat-completions API (contract §9.3).

The model sees, in the customer's language only, the entry the decision chose and up to two runners-up
(title and answer, within a prompt token budget), must answer from them and cite them as ``[1]``,
``[2]``... Its completion then passes the faithfulness gate (:mod:`ai_customer_service.dialog.gate`)
before a customer may see it. Every call ends in one outcome, counted in
``cs_llm_requests_total{outcome}``:

``accepted``      the gate accepted the answer (its citations renumbered to match the list);
``rejected``      the gate rejected it (``cs_llm_gate_rejections_total{reason}``), offline answer;
``timeout``       no answer within ``AI_CS_LLM_TIMEOUT_MS`` (``CS_LLM_5002``), offline answer;
``error``         HTTP or protocol error (``CS_LLM_5001``), offline answer;
``breaker_open``  the circuit breaker is open: no call is made (``CS_LLM_5003``), offline answer.

Timeouts, errors and slow calls feed the circuit breaker (:mod:`ai_customer_service.dialog.breaker`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx

from ai_customer_service.dialog import gate
from ai_customer_service.dialog.breaker import STATE_VALUE, BreakerState, CircuitBreaker
from ai_customer_service.dialog.text import cjk_ratio
from ai_customer_service.errors import LLM_BREAKER_OPEN, LLM_TIMEOUT, LLM_UNAVAILABLE
from ai_customer_service.logs import get_logger
from ai_customer_service.metrics import Metrics

log = get_logger(__name__)

MAX_SOURCES = 3
MIN_ANSWER_CHARS = 120  # a source is left out rather than cut below this


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    TIMEOUT = "timeout"
    ERROR = "error"
    BREAKER_OPEN = "breaker_open"


_FAILURE_CODE = {
    Outcome.REJECTED: LLM_UNAVAILABLE,
    Outcome.ERROR: LLM_UNAVAILABLE,
    Outcome.TIMEOUT: LLM_TIMEOUT,
    Outcome.BREAKER_OPEN: LLM_BREAKER_OPEN,
}


@dataclass(frozen=True)
class Source:
    """A knowledge-base entry as the model sees it: title and answer in the customer's language."""

    entry_id: str
    title: str
    answer: str

    @property
    def evidence(self) -> str:
        return f"{self.title}\n{self.answer}"


@dataclass(frozen=True)
class Generated:
    """What the model produced for one message and what the gate made of it."""

    outcome: Outcome
    text: str = ""  # the renumbered answer (accepted only)
    cited: tuple[str, ...] = ()  # entry ids; [n] in ``text`` is cited[n-1]
    reason: str | None = None  # the gate's rejection reason, or the error kind
    support: float | None = None  # the gate's weakest sentence support
    latency_ms: float = 0.0
    raw: str = ""  # the model's text before the gate (for eval and logs; never sent to a customer)

    @property
    def accepted(self) -> bool:
        return self.outcome is Outcome.ACCEPTED


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate: one token per CJK character, one per four other characters."""
    cjk = round(len(text) * cjk_ratio(text)) if text else 0
    return cjk + math.ceil((len(text) - cjk) / 4)


_INSTRUCTIONS = {
    "en": (
        "You are a customer-service assistant. Answer the customer's question using ONLY the numbered "
        "knowledge-base entries below. After each sentence, put the number of the entry it comes from "
        "in square brackets, like [1]. Do not add anything the entries do not say. If they do not answer "
        f"the question, reply exactly {gate.NO_ANSWER}. Reply briefly, in English."
    ),
    "zh": (
        "你是客服助手。只根据下面编号的知识库条目回答客户的问题，每句话后用方括号标出所依据条目的编号，"
        f"例如 [1]。不要添加条目中没有的内容。如果条目不能回答这个问题，只回复 {gate.NO_ANSWER}。"
        "请用简体中文简短回答。"
    ),
}
_KB_HEADING = {"en": "Knowledge base:", "zh": "知识库："}


def fit_sources(sources: Sequence[Source], budget_tokens: int, fixed_tokens: int) -> list[Source]:
    """The sources that fit the prompt budget, best first; the first (chosen) one is always kept,
    its answer cut to fit when it alone is over budget."""
    kept: list[Source] = []
    left = budget_tokens - fixed_tokens
    for i, source in enumerate(sources[:MAX_SOURCES]):
        cost = estimate_tokens(source.evidence) + 4
        if cost <= left:
            kept.append(source)
            left -= cost
        elif i == 0:
            room = max(MIN_ANSWER_CHARS, int(len(source.answer) * max(left, 0) / cost))
            kept.append(Source(source.entry_id, source.title, source.answer[:room].rstrip() + "…"))
            left = 0
    return kept


def build_messages(
    question: str,
    sources: Sequence[Source],
    history: Sequence[tuple[str, str]],
    language: str,
    *,
    budget_tokens: int = 1000,
) -> tuple[list[dict[str, str]], list[Source]]:
    """The chat messages and the sources they carry (after the token budget)."""
    lang = language if language in _INSTRUCTIONS else "en"
    turns = [("assistant" if role == "bot" else "user", content[:500]) for role, content in history[-4:]]
    fixed = estimate_tokens(_INSTRUCTIONS[lang] + question) + sum(estimate_tokens(c) for _, c in turns) + 16
    kept = fit_sources(sources, budget_tokens, fixed)
    numbered = "\n\n".join(f"[{i}] {s.title}\n{s.answer}" for i, s in enumerate(kept, start=1))
    system = f"{_INSTRUCTIONS[lang]}\n\n{_KB_HEADING[lang]}\n{numbered}"
    messages = [{"role": "system", "content": system}]
    messages.extend({"role": role, "content": content} for role, content in turns)
    messages.append({"role": "user", "content": question})
    return messages, kept


class LLMClient:
    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        model: str,
        timeout_ms: int,
        metrics: Metrics,
        max_tokens: int = 400,
        prompt_max_tokens: int = 1000,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.model = model
        self.metrics = metrics
        self.max_tokens = max_tokens
        self.prompt_max_tokens = prompt_max_tokens
        self.breaker = breaker or CircuitBreaker()
        self.last_outcome: Outcome | None = None
        self.last_error: str | None = None
        self.metrics.llm_breaker_state.set(STATE_VALUE[self.breaker.state])

        def on_change(state: BreakerState) -> None:
            metrics.llm_breaker_state.set(STATE_VALUE[state])
            log.warning("llm circuit breaker changed state", state=state.value)

        self.breaker.listeners.append(on_change)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/", headers=headers, timeout=httpx.Timeout(timeout_ms / 1000)
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    def status(self) -> dict[str, Any]:
        """The ``llm`` component of ``/actuator/health`` (informational; never changes readiness)."""
        state = self.breaker.state
        out: dict[str, Any] = {
            "status": "DOWN" if state is BreakerState.OPEN else "UP",
            "breaker": state.value,
            "model": self.model,
            "consecutive_failures": self.breaker.consecutive_failures,
        }
        if self.last_outcome is not None:
            out["last_outcome"] = self.last_outcome.value
        if self.last_error is not None:
            out["last_error"] = self.last_error
        return out

    def _finish(self, result: Generated) -> Generated:
        self.last_outcome = result.outcome
        self.metrics.llm_requests.labels(result.outcome.value).inc()
        code = _FAILURE_CODE.get(result.outcome)
        if result.outcome is Outcome.REJECTED:
            self.metrics.llm_gate_rejections.labels(str(result.reason)).inc()
        if code is not None:
            self.metrics.llm_failures.labels(code).inc()
            log.warning(
                "llm answer not used, using the offline answer",
                code=code,
                outcome=result.outcome.value,
                reason=result.reason,
                support=result.support,
            )
        return result

    async def _complete(self, messages: list[dict[str, str]]) -> tuple[str, str | None]:
        payload = {
            "model": self.model,
            "messages": messages,
            "temperature": 0.2,
            "max_tokens": self.max_tokens,
        }
        response = await self._client.post("chat/completions", json=payload)
        response.raise_for_status()
        choice = response.json()["choices"][0]
        finish = choice.get("finish_reason")
        return str(choice["message"]["content"] or ""), None if finish is None else str(finish)

    async def answer(
        self,
        question: str,
        sources: Sequence[Source],
        history: Sequence[tuple[str, str]],
        language: str,
        *,
        chosen: str | None = None,
    ) -> Generated:
        """Ask the model and gate its answer; ``chosen`` (default: the first source) must be cited."""
        if not sources:
            raise ValueError("the model needs at least the chosen entry")
        if not self.breaker.allow():
            return self._finish(Generated(Outcome.BREAKER_OPEN, reason="breaker_open"))
        messages, kept = build_messages(
            question, sources, history, language, budget_tokens=self.prompt_max_tokens
        )
        started = time.perf_counter()
        ok = False
        try:
            text, finish_reason = await self._complete(messages)
            ok = True
        except httpx.TimeoutException:
            self.last_error = "timeout"
            return self._finish(Generated(Outcome.TIMEOUT, reason="timeout", latency_ms=_ms(started)))
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            self.last_error = type(exc).__name__
            return self._finish(Generated(Outcome.ERROR, reason=type(exc).__name__, latency_ms=_ms(started)))
        finally:
            seconds = time.perf_counter() - started
            self.metrics.llm_latency.observe(seconds)
            self.breaker.record(ok=ok, seconds=seconds)
        verdict = gate.check(
            text,
            finish_reason=finish_reason,
            sources=[gate.GateSource(s.entry_id, s.evidence) for s in kept],
            chosen=chosen or kept[0].entry_id,
            language=language,
        )
        latency = _ms(started)
        if not verdict.accepted:
            log.info("llm answer rejected by the gate", reason=verdict.reason, detail=verdict.detail)
            return self._finish(
                Generated(
                    Outcome.REJECTED,
                    reason=str(verdict.reason),
                    support=verdict.support,
                    latency_ms=latency,
                    raw=text,
                )
            )
        return self._finish(
            Generated(
                Outcome.ACCEPTED,
                text=verdict.text,
                cited=verdict.cited,
                support=verdict.support,
                latency_ms=latency,
                raw=text,
            )
        )


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
