"""The demo reuses running Kafka and Redis, and stops only what it started itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from hookline.demo.services import SERVICES_SCRIPT, LocalServices


def test_the_services_script_is_found_beside_the_package() -> None:
    repository = Path(__file__).resolve().parents[2]
    assert repository / "scripts" / "services" == SERVICES_SCRIPT
    assert SERVICES_SCRIPT.is_file()


async def test_running_services_are_reused_without_the_script(tmp_path: Path) -> None:
    services = LocalServices(script=tmp_path / "no-such-script")

    await services.ensure()  # the test suite's Kafka and Redis answer

    assert services.started == []


async def test_release_stops_only_what_was_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    # A state folder of the test's own: the script finds no pid of its own there, so it
    # reports what it would stop and leaves the suite's Kafka and Redis running.
    monkeypatch.setenv("HOOKLINE_SERVICES_DIR", str(tmp_path))
    services = LocalServices()
    services.started = ["kafka"]

    await services.release(keep=True)
    kept = capfd.readouterr().err
    await services.release(keep=False)
    stopped = capfd.readouterr().err

    assert kept == ""
    assert "kafka:" in stopped
    assert "redis" not in stopped
