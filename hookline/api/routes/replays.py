"""Replays of a webhook: send its dead letters or past events again, follow, cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status
from fastapi.responses import JSONResponse

from hookline.api.dependencies import OrganizationId, Services
from hookline.api.routes import NOT_FOUND, RATE_LIMITED, Responses, WebhookId
from hookline.api.services import ApiServices
from hookline.api.views import ReplayCount, ReplayView
from hookline.errors import ReplayNotFoundError
from hookline.schemas.replays import ReplayJob, ReplayRequest

router = APIRouter(
    prefix="/v1/organizations/webhooks/{webhook_id}", tags=["replays"], responses=RATE_LIMITED
)

ReplayId = Annotated[
    str,
    Path(
        pattern=r"^rpl_[A-Za-z0-9_-]{16}$",
        description="The replay's id, such as `rpl_3q2x9yVb0kTz1mWd`.",
    ),
]

_NOT_FOUND: Responses = {404: {"description": "No such webhook, or no such replay of it."}}
_KAFKA_DOWN: Responses = {
    503: {
        "description": "Kafka did not answer; try again after `Retry-After` seconds.",
        "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}},
    }
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
        **NOT_FOUND,
        409: {
            "description": "The webhook is paused, or a replay of it is still running; the "
            "message says which."
        },
        422: {
            "description": "The body is invalid; or `since` is before the earliest time the "
            "topic still holds (the message names it), or a dry run's range holds more records "
            "than `HOOKLINE_REPLAY_DRY_RUN_LIMIT`. Each error's `loc` is the field.",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}
            },
        },
        **_KAFKA_DOWN,
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


@router.get("/replays/{replay_id}", summary="Get a replay", responses=_NOT_FOUND)
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
        **_NOT_FOUND,
        409: {"description": "The replay has finished or failed already."},
    },
)
async def cancel_replay(
    webhook_id: WebhookId, replay_id: ReplayId, org: OrganizationId, services: Services
) -> ReplayView:
    await _replay(services, org, webhook_id, replay_id)
    return ReplayView.of(await services.replay_jobs.cancel(org, replay_id))


async def _replay(services: ApiServices, org: str, webhook_id: str, replay_id: str) -> ReplayJob:
    """The organization's replay of this webhook, or ReplayNotFoundError (404)."""
    job = await services.replay_jobs.get(org, replay_id)
    if job.webhook_id != webhook_id:
        raise ReplayNotFoundError(replay_id)
    return job
