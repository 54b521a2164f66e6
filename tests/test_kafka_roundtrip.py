"""The local Kafka is a real broker: an envelope published with its key comes back intact."""

from __future__ import annotations

import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from hookline.schemas import EventEnvelope
from hookline.settings import Settings
from hookline.worker.topics import delete_topics
from tests.conftest import make_event


async def test_an_event_round_trips_through_kafka(settings: Settings) -> None:
    topic = f"test-roundtrip-{uuid.uuid4().hex[:8]}"
    event = make_event()
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=f"test-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await producer.start()
    await consumer.start()
    try:
        await producer.send_and_wait(
            topic, event.model_dump_json().encode(), key=event.internal_id.encode()
        )
        message = await consumer.getone()
    finally:
        await producer.stop()
        await consumer.stop()
        await delete_topics(settings.kafka_bootstrap_servers, [topic])

    assert message.key == event.internal_id.encode()
    assert EventEnvelope.model_validate_json(message.value or b"") == event
