"""Optional grounded answers from an OpenAI-compatible chat-completions API (contract §9.3).

The model sees only the top knowledge-base entries and the recent turns, must answer from them and
cite them as ``[1]``, ``[2]``...; the cited entries become the reply's citations. Any failure —
timeout (``CS_LLM_5002``), HTTP or protocol error, refusal, or an answer citing nothing
(``CS_LLM_5001``) — returns ``None`` and the caller uses the offline answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from ai_customer_service.http.metrics import Metrics
from ai_customer_service.logs import get_logger

log = get_logger(__name__)
_CITATION = re.compile(r"\[(\d{1,2})\]")
_NO_ANSWER = "NO_ANSWER"


@dataclass(frozen=True)
class Source:
    entry_id: str
    title: str
    answer: str


@dataclass(frozen=True)
class Grounded:
    text: str
    cited: tuple[str, ...]


def build_messages(
    question: str, sources: Sequence[Source], history: Sequence[tuple[str, str]], language: str
) -> list[dict[str, str]]:
    numbered = "\n\n".join(f"[{i}] {s.title}\n{s.answer}" for i, s in enumerate(sources, start=1))
    reply_language = "Chinese" if language == "zh" else "English"
    system = (
        "You are a customer-service assistant. Answer ONLY from the numbered knowledge-base entries "
        "below; cite every entry you use as [n]. If they do not answer the question, reply exactly "
        f"{_NO_ANSWER}. Be concise and friendly. Reply in {reply_language}.\n\n"
        f"Knowledge base:\n{numbered}"
    )
    messages = [{"role": "system", "content": system}]
    for role, content in history[-6:]:
        messages.append({"role": "assistant" if role == "bot" else "user", "content": content[:1000]})
    messages.append({"role": "user", "content": question})
    return messages


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
    ) -> None:
        self.model = model
        self.metrics = metrics
        self.max_tokens = max_tokens
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/", headers=headers, timeout=httpx.Timeout(timeout_ms / 1000)
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    def _fail(self, code: str, reason: str) -> None:
        self.metrics.llm_failures.labels(code).inc()
        log.warning("llm unavailable, using the offline answer", code=code, reason=reason)

    async def answer(
        self, question: str, sources: Sequence[Source], history: Sequence[tuple[str, str]], language: str
    ) -> Grounded | None:
        payload = {
            "model": self.model,
            "messages": build_messages(question, sources, history, language),
            "temperature": 0.2,
            "max_tokens": self.max_tokens,
        }
        try:
            response = await self._client.post("chat/completions", json=payload)
            response.raise_for_status()
            text = str(response.json()["choices"][0]["message"]["content"]).strip()
        except httpx.TimeoutException:
            self._fail("CS_LLM_5002", "timeout")
            return None
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as exc:
            self._fail("CS_LLM_5001", type(exc).__name__)
            return None
        if not text or _NO_ANSWER in text:
            self._fail("CS_LLM_5001", "no grounded answer")
            return None
        cited = []
        for number in _CITATION.findall(text):
            index = int(number) - 1
            if 0 <= index < len(sources) and sources[index].entry_id not in cited:
                cited.append(sources[index].entry_id)
        if not cited:
            self._fail("CS_LLM_5001", "answer cites no entry")
            return None
        return Grounded(text=text, cited=tuple(cited))
