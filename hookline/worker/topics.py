"""Creating the worker's own topics (retry tiers, dead letters) when they do not exist yet."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from hookline.errors import ConfigurationError

logger = logging.getLogger(__name__)

_TOPIC_ALREADY_EXISTS = 36


async def ensure_topics(
    bootstrap_servers: str, names: list[str], *, partitions: int, replication_factor: int
) -> None:
    """Create the missing topics among `names`; another worker creating them first is fine."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in names if name not in existing]
        if not missing:
            return
        response = await admin.create_topics(
            [NewTopic(name, partitions, replication_factor) for name in missing]
        )
        for name, code, *_ in response.topic_errors:
            if code not in (0, _TOPIC_ALREADY_EXISTS):
                raise ConfigurationError(
                    f"could not create topic {name!r} (Kafka error code {code}); check "
                    "HOOKLINE_TOPIC_PARTITIONS and HOOKLINE_TOPIC_REPLICATION_FACTOR"
                )
        logger.info("created topics %s", ", ".join(missing))
    finally:
        await admin.close()


async def delete_topics(bootstrap_servers: str, names: Iterable[str]) -> None:
    """Delete those of `names` that exist: what demos and tests leave would otherwise pile up,
    and a broker holding thousands of idle partitions spends a core on them under load."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        doomed = [name for name in names if name in existing]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()
