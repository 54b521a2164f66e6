"""Liveness of the API and its registry."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

from hookline.api.dependencies import Services
from hookline.api.routes import REGISTRY_UNAVAILABLE

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """The API answers and Redis answers it."""

    status: Literal["ok"] = "ok"


@router.get(
    "/healthz",
    summary="Check health",
    description="200 when Redis answers a ping; 503 when it does not.",
    responses=REGISTRY_UNAVAILABLE,
)
async def healthz(services: Services) -> Health:
    await services.redis.ping()
    return Health()
