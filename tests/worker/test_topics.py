"""The worker's view of its topics' configuration at start-up."""

from __future__ import annotations

import uuid

import pytest
from aiokafka.errors import KafkaError

from hookline.settings import Settings
from hookline.worker.backoff import INFRASTRUCTURE_ERRORS
from hookline.worker.topics import MESSAGE_LIMIT, delete_topics, ensure_topics, message_limits


async def test_a_topic_kafka_does_not_know_is_waited_for_not_a_configuration_error(
    worker_settings: Settings,
) -> None:
    # Right after the worker creates its topics, the broker that answers may not know one yet;
    # start-up waits out Kafka errors (until_done) but ends on a configuration error.
    unknown = f"hookline-test-unknown-{uuid.uuid4().hex[:8]}"

    with pytest.raises(KafkaError) as raised:
        await message_limits(worker_settings.kafka_bootstrap_servers, [unknown])

    assert isinstance(raised.value, INFRASTRUCTURE_ERRORS)
    assert unknown in str(raised.value)


async def test_topics_just_created_are_known_when_their_creation_returns(
    worker_settings: Settings,
) -> None:
    servers = worker_settings.kafka_bootstrap_servers
    names = [f"{worker_settings.retry_topic_prefix}.created-{n}" for n in range(8)]
    try:
        await ensure_topics(
            servers, names, partitions=4, replication_factor=1, configs={MESSAGE_LIMIT: "20000"}
        )

        assert await message_limits(servers, names) == dict.fromkeys(names, 20000)
    finally:
        await delete_topics(servers, names)
