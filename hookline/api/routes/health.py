"""Liveness of the API and its registry."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from hookline.api.dependencies import Services
from hookline.api.routes import REGISTRY_UNAVAILABLE

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """The API answers and Redis answers it; `degraded` lists what puts the registry at risk."""

    status: Literal["ok", "degraded"]
    problems: list[str] = Field(
        default_factory=list,
        description="Empty when `ok`. `degraded` while Redis persists nothing (neither AOF nor "
        "snapshots): a Redis restart would lose every webhook.",
    )


@router.get(
    "/healthz",
    summary="Check health",
    description="200 while Redis answers: `ok`, or `degraded` with its `problems` (the API "
    "still serves). 503 when Redis does not answer.",
    responses=REGISTRY_UNAVAILABLE,
)
async def healthz(services: Services) -> Health:
    problem = (await services.persistence.read()).problem
    if problem:
        return Health(status="degraded", problems=[problem])
    return Health(status="ok")
