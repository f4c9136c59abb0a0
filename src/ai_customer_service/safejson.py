"""Parsing JSON that comes from outside (request bodies, uploaded files) without surprises.

``json.loads`` alone turns some hostile inputs into exceptions nobody expects, which became 500s:

- a number with more than 4,300 digits raises a plain ``ValueError`` (Python's int-conversion limit);
- 50,000 levels of nesting raise ``RecursionError``;
- ``NaN``, ``Infinity`` and ``1e999`` are accepted (not JSON; PostgreSQL's JSONB refuses them later).

:func:`loads` turns each into :class:`JsonInputError` (a ``ValueError``) with a message a client can
act on, and also refuses nesting deeper than :data:`MAX_DEPTH` levels, so code further in (validation,
storage, serialisation) never recurses over attacker-shaped data. Callers map the error to their
route's 400 code.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 32
"""Deepest nesting of arrays/objects accepted (our bodies need 3; an entry's metadata a few more)."""

MAX_NUMBER_CHARS = 100
"""Longest number literal accepted (no field of ours needs more than ~20 digits)."""


class JsonInputError(ValueError):
    """The text is not JSON we accept. The message is a predicate ("is nested deeper than 32 levels")
    that callers prefix with the subject: ``f"request body {exc}"``; safe to show to the client."""


def _constant(name: str) -> Any:
    raise JsonInputError(f"holds {name}, which is not a JSON number")


def _float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise JsonInputError(f"holds a number longer than {MAX_NUMBER_CHARS} characters")
    value = float(text)
    if not math.isfinite(value):
        raise JsonInputError(f"holds an out-of-range number ({text[:20]})")
    return value


def _int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise JsonInputError(f"holds a number longer than {MAX_NUMBER_CHARS} characters")
    return int(text)


def depth_of(value: Any) -> int:
    """Nesting depth of a parsed value (a scalar is 0, ``[]`` is 1), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        stack.extend((child, depth) for child in children)
    return deepest


def loads(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse ``raw`` (UTF-8 bytes or text); :class:`JsonInputError` when it is not acceptable JSON."""
    try:
        value = json.loads(raw, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except JsonInputError:
        raise
    except RecursionError:
        raise JsonInputError(f"is nested deeper than {max_depth} levels") from None
    except json.JSONDecodeError as exc:
        raise JsonInputError(
            f"is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    except UnicodeDecodeError:
        raise JsonInputError("is not valid UTF-8") from None
    except ValueError as exc:  # int-conversion limits and the like
        raise JsonInputError(f"is not acceptable JSON: {exc}") from None
    if depth_of(value) > max_depth:
        raise JsonInputError(f"is nested deeper than {max_depth} levels")
    return value
