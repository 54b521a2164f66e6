"""The isolation rounds in one worker, on the real stack: what each round drains."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.run import _clean_up, _options, _parser, _settings
from bench.sections import Bench, _interleaved, new_run_id
from bench.stack import Kafka, Sink
from hookline.registry import connect_redis
from hookline.registry.keys import RegistryKeys


@pytest.mark.timeout(150)
async def test_every_round_drains_the_same_webhooks(tmp_path: Path) -> None:
    # Admission keeps an endpoint's breaker per webhook: a dead webhook registered anew each
    # round would be found out anew each round, so the rounds would never see it known dead.
    args = _parser().parse_args(["--quick", "--interleaved-rounds", "1", "--out", str(tmp_path)])
    settings = _settings()
    sink = await Sink.start()
    redis = connect_redis(settings.redis_url)
    kafka = Kafka(settings.kafka_bootstrap_servers)
    bench = Bench(_options(args, tmp_path), settings, sink, kafka, redis, new_run_id())
    try:
        rounds = await _interleaved(bench)
        pattern = RegistryKeys(bench.prefix).every_webhook()
        webhooks = [key async for key in redis.scan_iter(match=pattern, count=1000)]
    finally:
        await sink.stop()
        await _clean_up(settings, redis, bench.prefix)

    assert len(rounds) == 1  # the first round finds the dead destination out: not counted
    assert len(webhooks) == 4  # alone, dead (a healthy one and the dead one), control
