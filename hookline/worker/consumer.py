"""The worker's Kafka consumer, tuned for taking events in batches."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer

FETCH_MIN_BYTES = 16 * 1024
FETCH_MAX_WAIT_MS = 5
"""The broker answers a fetch once it has FETCH_MIN_BYTES, or after this wait: fetching each
message as it arrives (aiokafka's defaults) costs a quarter more CPU at a steady rate, and
waiting longer for more saves little while it lengthens the latency tail (the bench's latency
section)."""


async def start_consumer(servers: str, group: str, max_records: int) -> AIOKafkaConsumer:
    """A started consumer of `group` that commits only when told, reading a new group's
    partitions from the start; it subscribes to nothing yet."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=servers,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=max_records,
        fetch_min_bytes=FETCH_MIN_BYTES,
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
    )
    try:
        await consumer.start()
    except BaseException:
        await consumer.stop()
        raise
    return consumer
