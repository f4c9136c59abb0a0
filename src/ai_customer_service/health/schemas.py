"""Response bodies of the health endpoints (contract §11)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Live(BaseModel):
    status: Literal["UP"] = "UP"


class Component(BaseModel):
    """One component's state (``UP``, ``DOWN``; informational ones also ``LOADING``/``DEGRADED``)
    and what it reports besides (revision, pool use, entries, ...)."""

    model_config = ConfigDict(extra="allow")

    status: str


class Readiness(BaseModel):
    status: Literal["UP", "DOWN"]
    components: dict[str, Component] = Field(
        description="named after the store in use (`postgres` or `sqlite`), `server` while draining"
    )


class Health(Readiness):
    version: str
    environment: str
