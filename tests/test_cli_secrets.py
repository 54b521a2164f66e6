"""`hookline` and the keys that encrypt webhooks at rest: refused start-ups, key commands, and
an access log without query strings."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from hookline.registry import RegistryKeys, WebhookStore
from hookline.registry.encryption import RecordCipher
from hookline.settings import Settings
from tests.conftest import free_port
from tests.registry.conftest import webhook_config
from tests.test_cli import cli_settings, environment, hookline

__all__ = ["cli_settings"]  # a fixture of the tests below

OLD_KEY, NEW_KEY = RecordCipher.generate_key(), RecordCipher.generate_key()


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hookline.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("command", ["api", "worker"])
@pytest.mark.parametrize(
    ("keys", "problem"),
    [(None, "HOOKLINE_SECRET_KEYS is not set"), ("n0t-a-k3y", "is not a Fernet key")],
    ids=["missing", "malformed"],
)
def test_api_and_worker_refuse_to_start_without_a_valid_secret_key(
    cli_settings: Settings, command: str, keys: str | None, problem: str
) -> None:
    env = environment(cli_settings)
    del env["HOOKLINE_SECRET_KEYS"]
    if keys is not None:
        env["HOOKLINE_SECRET_KEYS"] = keys

    result = run(env, command)

    assert result.returncode == 2
    assert problem in result.stderr and "hookline secrets generate-key" in result.stderr
    assert "Traceback" not in result.stderr
    assert "n0t-a-k3y" not in result.stderr


def test_generate_key_prints_a_key_that_encrypts(cli_settings: Settings) -> None:
    result = hookline(cli_settings, "secrets", "generate-key")

    assert result.returncode == 0, result.stderr
    cipher = RecordCipher([result.stdout.strip()])
    assert cipher.decrypt(cipher.encrypt("x")) == "x"


async def test_rotate_rewrites_every_webhook_with_the_new_first_key(
    cli_settings: Settings, redis: Redis
) -> None:
    keys = RegistryKeys(cli_settings.redis_key_prefix)
    old = WebhookStore(redis, keys, RecordCipher([OLD_KEY]))
    made = [
        await old.create(org, webhook_config()) for org in ("int_" + "a" * 24, "int_" + "b" * 24)
    ]
    env = environment(cli_settings, HOOKLINE_SECRET_KEYS=f"{NEW_KEY}, {OLD_KEY}")

    result = run(env, "secrets", "rotate")

    assert result.returncode == 0, result.stderr
    assert "re-encrypted 2 webhooks" in result.stdout
    new_only = WebhookStore(redis, keys, RecordCipher([NEW_KEY]))
    assert [await new_only.get(w.internal_id, w.webhook_id) for w in made] == made


@pytest.mark.timeout(60)
def test_the_access_log_keeps_no_query_string(cli_settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "api.log"
    env = environment(cli_settings, HOOKLINE_API_PORT=str(port))
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "hookline.cli", "api"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            until_served(f"http://127.0.0.1:{port}/healthz?token=qu3ry-s3cret&x=1")
        finally:
            process.terminate()
            process.wait(timeout=20)

    text = log.read_text()
    assert '"GET /healthz HTTP/1.1\\" 200' in text
    assert "qu3ry-s3cret" not in text and "token=" not in text


def until_served(url: str, within: float = 30) -> None:
    """Ask `url` until it answers 200 (the server may still be starting)."""
    deadline = time.monotonic() + within
    with httpx.Client() as client:
        while True:
            try:
                if client.get(url).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"{url} never answered 200"
            time.sleep(0.2)
