"""The container setup is a valid Compose file (the engine is not needed to check that)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from hookline.registry.encryption import RecordCipher

ROOT = Path(__file__).resolve().parent.parent


def _compose_command() -> list[str]:
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy:
        return [legacy]
    pytest.skip("no docker compose client installed (scripts/test installs one)")


def _compose_config(secret_keys: str | None) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if name != "HOOKLINE_SECRET_KEYS"}
    if secret_keys is not None:
        env["HOOKLINE_SECRET_KEYS"] = secret_keys
    return subprocess.run(
        [*_compose_command(), "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
    )


def test_compose_file_is_valid() -> None:
    result = _compose_config(RecordCipher.generate_key())
    assert result.returncode == 0, result.stderr


def test_compose_needs_the_secret_key_from_the_shell() -> None:
    result = _compose_config(None)
    assert result.returncode != 0
    assert "set HOOKLINE_SECRET_KEYS" in result.stderr


def test_compose_runs_the_api_and_the_worker_beside_kafka_and_redis() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]

    assert services["kafka"]["image"] == "apache/kafka:4.4.0"
    assert "broker,controller" in services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
    redis = services["redis"]["command"]
    assert redis[redis.index("--appendonly") + 1] == "yes"
    assert redis[redis.index("--appendfsync") + 1] == "everysec"
    assert redis[redis.index("--save") + 1].strip()
    assert services["api"]["command"] == ["hookline", "api"]
    assert services["worker"]["command"] == ["hookline", "worker"]
    for role in ("api", "worker"):
        assert services[role]["build"] == "."
        assert services[role]["environment"]["HOOKLINE_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:19092"
