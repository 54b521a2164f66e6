"""Creating the worker's own topics (retry tiers, dead letters) when they do not exist yet."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaTimeoutError, UnknownTopicOrPartitionError

from hookline.errors import ConfigurationError

logger = logging.getLogger(__name__)

_TOPIC_ALREADY_EXISTS = 36
_KNOWN_WITHIN = 10.0
MESSAGE_LIMIT = "max.message.bytes"
"""The topic setting that caps a record batch, and so the largest record, a topic accepts."""


async def ensure_topics(
    bootstrap_servers: str,
    names: list[str],
    *,
    partitions: int,
    replication_factor: int,
    configs: Mapping[str, str] | None = None,
) -> None:
    """Create the missing topics among `names` with `configs` and return once the broker knows
    them; another worker creating them first is fine."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in names if name not in existing]
        if not missing:
            return
        response = await admin.create_topics(
            [
                NewTopic(name, partitions, replication_factor, topic_configs=dict(configs or {}))
                for name in missing
            ]
        )
        for name, code, *_ in response.topic_errors:
            if code not in (0, _TOPIC_ALREADY_EXISTS):
                raise ConfigurationError(
                    f"could not create topic {name!r} (Kafka error code {code}); check "
                    "HOOKLINE_TOPIC_PARTITIONS and HOOKLINE_TOPIC_REPLICATION_FACTOR"
                )
        await _until_known(admin, missing)
        logger.info("created topics %s", ", ".join(missing))
    finally:
        await admin.close()


async def _until_known(admin: AIOKafkaAdminClient, names: list[str]) -> None:
    """Wait until the broker lists every topic of `names`: the controller acknowledges a
    creation before the broker's metadata has it, and a request for it meanwhile is refused."""
    try:
        async with asyncio.timeout(_KNOWN_WITHIN):
            while True:
                if set(names) <= set(await admin.list_topics()):
                    return
                await asyncio.sleep(0.05)
    except TimeoutError:
        # A KafkaError, which callers wait out like any broker that is slow to answer.
        raise KafkaTimeoutError(
            f"the broker did not list topics {', '.join(names)} within "
            f"{_KNOWN_WITHIN:.0f} s of their creation"
        ) from None


async def message_limits(bootstrap_servers: str, names: list[str]) -> dict[str, int]:
    """Each existing topic's largest accepted record batch in bytes (its max.message.bytes)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        wanted = {MESSAGE_LIMIT: None}
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name, wanted) for name in names]
        )
    finally:
        await admin.close()
    limits: dict[str, int] = {}
    for response in responses:
        for code, message, _type, name, entries, *_ in response.resources:
            if code == UnknownTopicOrPartitionError.errno:
                # A topic created a moment ago may not be known to the broker that answers yet:
                # a KafkaError, which callers wait out, not a configuration error that ends them.
                raise UnknownTopicOrPartitionError(f"topic {name!r} is not known yet: {message}")
            if code != 0:
                raise ConfigurationError(
                    f"could not read the configuration of topic {name!r} "
                    f"(Kafka error code {code}: {message})"
                )
            for key, value, *_ in entries:
                if key == MESSAGE_LIMIT:
                    limits[name] = int(value)
    return limits


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
