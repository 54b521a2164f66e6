"""Whether Redis persists the registry, as read from real redis-servers configured each way."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from hookline.registry.persistence import PersistenceCheck, PersistenceState, read_persistence
from tests.redis_servers import (
    APPEND_ONLY,
    SNAPSHOTS,
    VOLATILE,
    admin,
    redis_server,
    turn_on_snapshots,
)

PASSWORD = "probe-pass"


@pytest.mark.parametrize(
    ("persistence", "state"),
    [
        (VOLATILE, PersistenceState.OFF),
        (APPEND_ONLY, PersistenceState.ON),
        (SNAPSHOTS, PersistenceState.ON),
    ],
    ids=["neither", "aof", "snapshots"],
)
async def test_persistence_is_read_from_the_servers_configuration(
    tmp_path: Path, persistence: tuple[str, ...], state: PersistenceState
) -> None:
    async with redis_server(tmp_path, persistence) as url, admin(url) as redis:
        found = await read_persistence(redis)

    assert found.state is state
    assert (found.problem is not None) == (state is PersistenceState.OFF)


@pytest.mark.parametrize(
    ("persistence", "snapshot", "state"),
    [
        (APPEND_ONLY, False, PersistenceState.ON),
        (VOLATILE, True, PersistenceState.ON),
        (VOLATILE, False, PersistenceState.UNKNOWN),
    ],
    ids=["aof", "snapshot-taken", "nothing-seen"],
)
async def test_without_config_access_info_decides_or_it_is_unknown_not_off(
    tmp_path: Path, persistence: tuple[str, ...], snapshot: bool, state: PersistenceState
) -> None:
    async with redis_server(tmp_path, persistence) as url, admin(url) as owner:
        # Every command but CONFIG, as managed Redis services and tight ACLs allow.
        await owner.acl_setuser(
            "probe",
            enabled=True,
            passwords=[f"+{PASSWORD}"],
            keys=["*"],
            channels=["*"],
            commands=["+@all", "-config"],
        )
        if snapshot:
            await owner.save()
        async with admin(url.replace("redis://", f"redis://probe:{PASSWORD}@")) as probe:
            found = await read_persistence(probe)

    assert found.state is state
    assert found.problem is None
    assert "CONFIG GET is refused" in found.detail


async def test_the_check_warns_once_while_off_and_notes_when_it_is_on_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hookline.registry.persistence")
    async with redis_server(tmp_path, VOLATILE) as url, admin(url) as redis:
        check = PersistenceCheck(redis)
        await check.at_start()
        assert await check.problems(within=1) == [_problem(check)]
        await turn_on_snapshots(redis)
        assert await check.problems(within=1) == []

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "REDIS PERSISTENCE IS OFF" in warnings[0].getMessage()
    assert "appendonly yes" in warnings[0].getMessage()
    assert caplog.records[-1].levelno == logging.INFO
    assert "persistence is on" in caplog.records[-1].getMessage()


async def test_a_redis_gone_keeps_the_last_answer_for_health_checks(tmp_path: Path) -> None:
    async with redis_server(tmp_path, VOLATILE) as url, admin(url) as redis:
        check = PersistenceCheck(redis)
        await check.at_start()
    # The server has stopped: the problem found last still stands, promptly.
    assert await check.problems(within=0.5) == [_problem(check)]


def _problem(check: PersistenceCheck) -> str:
    assert check.last is not None and check.last.problem is not None
    assert check.last.problem.startswith("redis persistence is off (appendonly no, save '')")
    return check.last.problem
