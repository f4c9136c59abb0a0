"""The operating point a knowledge base answers at: its answer threshold and what that threshold is
expected to give (fitted on the KB itself when the index is built, or a documented fallback).

Shown on the knowledge component of ``/actuator/health``, in the KB API and in ``eval``'s output.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

# The shipped global threshold (docs/evaluation.md), used when a KB is too small to fit its own.
FALLBACK_THRESHOLD = 0.37

Source = Literal["self-calibrated", "fallback", "override"]


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    """Where a knowledge base answers: ``confidence >= threshold``."""

    threshold: float
    source: Source
    # the operator's goal (AI_CS_DIALOG_TARGET_PRECISION), when the point was fitted for one
    target_precision: float | None = None
    # expected on the KB's own held-out questions at ``threshold`` (None for a fallback)
    expected_precision: float | None = None
    expected_answer_rate: float | None = None
    # how many held-out questions the fit used: positives (answerable) and negatives (not)
    positives: int = 0
    negatives: int = 0
    # on the same held-out questions: answered with their own entry / held-out in-scope questions,
    # and declined / held-out out-of-scope questions (near misses and the shipped corpus)
    expected_in_scope_accuracy: float | None = None
    expected_out_of_scope_recall: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


FALLBACK = OperatingPoint(threshold=FALLBACK_THRESHOLD, source="fallback")
