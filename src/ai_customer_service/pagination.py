"""The one page type of every list endpoint: ``{items, total, page, page_size}``.

A query returns ``Page[Row]`` (rows as the database gives them); a router answers with
``Page[RowOut]`` (or a named subclass such as ``TicketList(Page[TicketOut])``, which keeps the
OpenAPI schema's name). :data:`PageNumber` is the ``page`` query parameter, at most
:data:`MAX_PAGE` so that the offset stays far inside the databases' integer range.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, ConfigDict

T = TypeVar("T")
U = TypeVar("U")

MAX_PAGE = 1_000_000
"""Highest page number of a list endpoint (× a page size ≤ 1000 stays far below 2**31)."""

PageNumber = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"1-based page number (at most {MAX_PAGE})")]
"""The ``page`` query parameter of a list endpoint: ``page: PageNumber = 1``."""


def offset(page: int, page_size: int) -> int:
    """Rows to skip before ``page`` (1-based)."""
    return (page - 1) * page_size


class Page(BaseModel, Generic[T]):
    """One page of a list: the items, how many match in all, which page and its size."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    items: list[T]
    total: int
    page: int
    page_size: int

    def map(self, convert: Callable[[T], U]) -> list[U]:
        """The items converted one by one (e.g. rows to response models)."""
        return [convert(item) for item in self.items]
