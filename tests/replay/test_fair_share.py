"""Organizations share a worker's replay places: one organization's long replay hands its place
over after its turn, so another's does not wait for it to end."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from hookline.demo.peers.http_receiver import HttpReceiver
from hookline.settings import Settings
from hookline.worker.replays import fair_order
from tests.conftest import make_event
from tests.replay.conftest import Client, all_consumed
from tests.worker.conftest import eventually, http_channel, running_worker
from tests.worker.support import Publish

LONG = 300
SHORT = 10


async def test_a_long_replay_hands_its_place_to_another_organizations_after_its_turn(
    worker_settings: Settings,
    clients: Callable[[], Awaitable[Client]],
    receiver: HttpReceiver,
    publish: Publish,
) -> None:
    # One place, 50 deliveries/s: the long replay alone would hold it for some six seconds.
    settings = worker_settings.model_copy(
        update={"replay_jobs_per_worker": 1, "replay_turn": 1.0, "replay_rate": 50.0}
    )
    big, small = await clients(), await clients()
    since = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()

    async with running_worker(settings):
        await publish(*(make_event(big.org) for _ in range(LONG)))
        await publish(*(make_event(small.org) for _ in range(SHORT)))
        await all_consumed(settings)  # delivered to no one: no webhook yet
        big_hook = await big.webhook([http_channel(receiver.url("/big"))])
        small_hook = await small.webhook([http_channel(receiver.url("/small"))])
        long = await big.replay(big_hook, source="events", since=since)
        await eventually(lambda: receiver.on("/big"))
        short = await small.replay(small_hook, source="events", since=since)
        short_view = await small.ended(small_hook, short.json()["replay_id"])
        long_view = await big.replay_view(big_hook, long.json()["replay_id"])
        assert long_view["state"] == "running", "the short replay waited for the long one to end"
        long_view = await big.ended(big_hook, long.json()["replay_id"])

    assert short_view["state"] == long_view["state"] == "finished"
    assert (short_view["counts"]["sent"], long_view["counts"]["sent"]) == (SHORT, LONG)
    # Handing its place over and taking it up again, the long replay sent nothing twice.
    sent = Counter(received.webhook_id for received in receiver.on("/big"))
    assert len(sent) == LONG and set(sent.values()) == {1}


def test_organizations_with_fewer_jobs_running_and_served_least_lately_go_first() -> None:
    active = [("a", "a1"), ("a", "a2"), ("a", "a3"), ("b", "b1"), ("c", "c1"), ("c", "c2")]
    running = [("a", "a1")]
    served = {"a": 10.0, "c": 5.0}

    order = fair_order(active, running, served)

    # b and c have nothing running here, and b was never served; then one more of a and of c
    # (c served before a), then a's last.
    assert order == [("b", "b1"), ("c", "c1"), ("c", "c2"), ("a", "a2"), ("a", "a3")]
