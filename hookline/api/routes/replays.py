"""Replays of a webhook: send its dead letters or past events again, follow, cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status
from fastapi.responses import JSONResponse

from hookline.api.dependencies import OrganizationId, Services
from hookline.api.routes import (
    EVERY_CALL,
    NOT_FOUND,
    WITH_BODY,
    Responses,
    WebhookId,
    conflict,
    invalid,
    not_found,
    unavailable,
)
from hookline.api.services import ApiServices
from hookline.api.views import ReplayCount, ReplayView
from hookline.errors import ReplayNotFoundError
from hookline.schemas.replays import ReplayJob, ReplayRequest

router = APIRouter(
    prefix="/v1/organizations/webhooks/{webhook_id}", tags=["replays"], responses=EVERY_CALL
)

ReplayId = Annotated[
    str,
    Path(
        pattern=r"^rpl_[A-Za-z0-9_-]{16}$",
        description="The replay's id, such as `rpl_3q2x9yVb0kTz1mWd`.",
    ),
]

_ON_ONE: Responses = {
    **not_found("No such webhook, or no such replay of it."),
    **invalid("`webhook_id` or `replay_id` is invalid."),
}


@router.post(
    "/replay",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ReplayView,
    response_description="The replay is started; follow it with `GET .../replays/{replay_id}`.",
    summary="Replay dead letters or past events",
    description="Send again, to this webhook with its current configuration: its dead letters "
    "(`source` `dead_letters`), or the events on the source topics that it subscribes to "
    "(`events`, e.g. for a webhook created after them, or after an outage), within `since` and "
    "`until` and the filters given. A replay is a job (202, follow it with `GET "
    ".../replays/{replay_id}`); its deliveries keep their ids unless `new_ids`, go at "
    "`HOOKLINE_REPLAY_RATE` per worker and take the same retries and dead letters as live ones. "
    "With `dry_run` the answer (200) is how many deliveries it would send, and nothing is sent.",
    responses={
        200: {"model": ReplayCount, "description": "A dry run: what the replay would send."},
        **WITH_BODY,
        **NOT_FOUND,
        **conflict(
            "The webhook is paused, or a replay of it is still running; the message says which."
        ),
        **invalid(
            "The request is invalid; or `since` is before the earliest time the topic still "
            "holds (the message names it), or a dry run's range holds more records than "
            "`HOOKLINE_REPLAY_DRY_RUN_LIMIT`. Each error's `loc` is the field."
        ),
        **unavailable(
            "The webhook registry (Redis) is unavailable, or Kafka did not answer the replay's "
            "look-up; try again shortly."
        ),
    },
)
async def start_replay(
    webhook_id: WebhookId, body: ReplayRequest, org: OrganizationId, services: Services
) -> Response:
    planned = await services.replays.plan(org, webhook_id, body)
    if isinstance(planned, int):
        return JSONResponse(ReplayCount(count=planned).model_dump())
    view = ReplayView.of(planned)
    return JSONResponse(view.model_dump(mode="json"), status_code=status.HTTP_202_ACCEPTED)


@router.get("/replays/{replay_id}", summary="Get a replay", responses=_ON_ONE)
async def get_replay(
    webhook_id: WebhookId, replay_id: ReplayId, org: OrganizationId, services: Services
) -> ReplayView:
    return ReplayView.of(await _replay(services, org, webhook_id, replay_id))


@router.post(
    "/replays/{replay_id}/cancel",
    summary="Cancel a replay",
    description="Stop a running replay: deliveries under way end, no more are sent. Cancelling "
    "a cancelled replay changes nothing.",
    responses={
        **_ON_ONE,
        **conflict("The replay has finished or failed already."),
    },
)
async def cancel_replay(
    webhook_id: WebhookId, replay_id: ReplayId, org: OrganizationId, services: Services
) -> ReplayView:
    await _replay(services, org, webhook_id, replay_id)
    return ReplayView.of(await services.replay_jobs.cancel(org, replay_id))


async def _replay(services: ApiServices, org: str, webhook_id: str, replay_id: str) -> ReplayJob:
    """The organization's replay of this webhook, or ReplayNotFoundError (404); a deleted
    webhook's replays are gone with it (WebhookNotFoundError, 404)."""
    await services.webhooks.get(org, webhook_id)
    job = await services.replay_jobs.get(org, replay_id)
    if job.webhook_id != webhook_id:
        raise ReplayNotFoundError(replay_id)
    return job
