"""A webhook's dead letters, listed through the API to its organization only, newest first."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from redis.asyncio import Redis

from hookline.demo.peers.http_receiver import HttpReceiver
from hookline.registry import RegistryKeys
from hookline.schemas import delivery_id
from hookline.settings import Settings
from tests.api.conftest import WEBHOOKS
from tests.conftest import make_event
from tests.replay.conftest import Client
from tests.worker.conftest import eventually, http_channel, running_worker
from tests.worker.support import Publish, Script


async def test_dead_letters_are_listed_newest_first_to_their_organization_only(
    worker_settings: Settings,
    clients: Callable[[], Awaitable[Client]],
    receiver: HttpReceiver,
    publish: Publish,
) -> None:
    owner, other = await clients(), await clients()
    receiver.answer = Script(then=(400, {}))
    webhook_id = await owner.webhook([http_channel(receiver.url())])
    events = [make_event(owner.org, "object.created"), make_event(owner.org, "object.deleted")]
    events.append(make_event(owner.org, "object.updated"))
    listing = f"{WEBHOOKS}/{webhook_id}/dead-letters"

    async with running_worker(worker_settings):
        await publish(*events)

        async def three_listed() -> bool:
            response = await owner.http.get(listing)
            return len(response.json()["data"]) == 3

        await eventually(three_listed)

    first = (await owner.http.get(listing, params={"limit": 2})).json()
    rest = (await owner.http.get(listing, params={"cursor": first["next_cursor"]})).json()
    letters = first["data"] + rest["data"]
    assert rest["next_cursor"] is None
    assert len(letters) == 3
    times = [datetime.fromisoformat(letter["failed_at"]) for letter in letters]
    assert times == sorted(times, reverse=True)
    assert {letter["event_id"] for letter in letters} == {event.event_id for event in events}
    by_event = {letter["event_id"]: letter for letter in letters}
    for event in events:
        letter = by_event[event.event_id]
        assert letter["event_type"] == event.event_type.value
        assert letter["channel"] == "webhook"
        assert letter["reason"] == "permanent_failure"
        assert letter["attempts"] == 1
        assert "400" in letter["last_error"]
        assert letter["delivery_id"] == delivery_id(event.event_id, webhook_id, 0)
        assert "offset" not in letter
    foreign = await other.http.get(listing)
    assert foreign.status_code == 404
    assert "data" not in foreign.json()


async def test_deleting_a_webhook_deletes_its_dead_letters_list(
    worker_settings: Settings,
    clients: Callable[[], Awaitable[Client]],
    receiver: HttpReceiver,
    publish: Publish,
    redis: Redis,
) -> None:
    owner = await clients()
    receiver.answer = Script(then=(400, {}))
    webhook_id = await owner.webhook([http_channel(receiver.url())])
    listing = f"{WEBHOOKS}/{webhook_id}/dead-letters"
    index = RegistryKeys(worker_settings.redis_key_prefix).dead_letters(owner.org, webhook_id)

    async with running_worker(worker_settings):
        await publish(make_event(owner.org))

        async def listed() -> bool:
            return bool((await owner.http.get(listing)).json()["data"])

        await eventually(listed)
        assert await redis.exists(index)
        assert (await owner.http.delete(f"{WEBHOOKS}/{webhook_id}")).status_code == 204

    assert not await redis.exists(index)
    assert (await owner.http.get(listing)).status_code == 404
