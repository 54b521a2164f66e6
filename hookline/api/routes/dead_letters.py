"""A webhook's dead letters: the deliveries given up on, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from hookline.api.dependencies import OrganizationId, Services
from hookline.api.routes import EVERY_CALL, NOT_FOUND, WebhookId, invalid
from hookline.api.views import DeadLetterList, DeadLetterView
from hookline.registry.dead_letters import POSITION_PATTERN

router = APIRouter(
    prefix="/v1/organizations/webhooks/{webhook_id}", tags=["dead letters"], responses=EVERY_CALL
)


@router.get(
    "/dead-letters",
    summary="List dead letters",
    description="The webhook's deliveries that were given up on (retries exhausted, a permanent "
    "failure, held back too long), newest first: the most recent "
    "`HOOKLINE_DEAD_LETTERS_PER_WEBHOOK` of them. `POST .../replay` with `source` "
    "`dead_letters` sends them again.",
    responses={**NOT_FOUND, **invalid("`webhook_id`, `limit` or `cursor` is invalid.")},
)
async def list_dead_letters(
    webhook_id: WebhookId,
    org: OrganizationId,
    services: Services,
    limit: Annotated[int, Query(ge=1, le=100, description="Dead letters per page.")] = 50,
    cursor: Annotated[
        str | None,
        Query(pattern=POSITION_PATTERN, description="`next_cursor` of the previous page."),
    ] = None,
) -> DeadLetterList:
    await services.webhooks.get(org, webhook_id)  # 404 for a missing or foreign webhook
    page = await services.dead_letters.page(org, webhook_id, limit, cursor)
    views = [DeadLetterView.of(summary) for summary in page.items]
    return DeadLetterList(data=views, next_cursor=page.next_cursor)
