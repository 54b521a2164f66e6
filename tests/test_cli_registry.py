"""`hookline registry export` and `import`, run as an operator runs them: a subprocess with
HOOKLINE_* settings, over the real Redis."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from hookline.registry import ApiKeyStore, RegistryKeys, WebhookStore
from hookline.registry.encryption import RecordCipher
from hookline.schemas import HttpChannel, SlackChannel, WebhookCreate, new_organization_id
from hookline.settings import Settings
from tests.registry.test_transfer import everything_under
from tests.test_cli import cli_settings, hookline

__all__ = ["cli_settings"]  # a fixture of the tests below

SLACK_URL = "https://hooks.slack.com/services/T0/B0/sl4ck-s3cret"
FILLED_SECRET = "whsec_" + "Zmls" * 8


def target_of(settings: Settings, **changes: object) -> Settings:
    """The settings of an empty registry (a prefix under the test's, cleaned up with it)."""
    return settings.model_copy(
        update={"redis_key_prefix": f"{settings.redis_key_prefix}:target", **changes}
    )


def store_of(redis: Redis, settings: Settings) -> WebhookStore:
    assert settings.secret_keys is not None
    cipher = RecordCipher(settings.secret_keys.get_secret_value().split(","))
    return WebhookStore(redis, RegistryKeys(settings.redis_key_prefix), cipher)


async def two_channels(redis: Redis, settings: Settings, org: str) -> str:
    """A webhook with a signed HTTP channel and a Slack one; returns its id."""
    config = WebhookCreate.model_validate(
        {
            "webhook_name": "Audit",
            "event_types": ["object.created"],
            "channels": [
                {"channel": "webhook", "configs": {"url": "https://hooks.example/in"}},
                {"channel": "slack", "configs": {"webhook_url": SLACK_URL}},
            ],
        }
    )
    return (await store_of(redis, settings).create(org, config)).webhook_id


async def test_a_file_with_one_bad_line_is_refused_naming_it_and_nothing_is_written(
    cli_settings: Settings, redis: Redis, tmp_path: Path
) -> None:
    for _ in range(4):
        await two_channels(redis, cli_settings, new_organization_id())
    backup = tmp_path / "registry.jsonl"
    assert hookline(cli_settings, "registry", "export", "-o", str(backup)).returncode == 0
    lines = backup.read_text().splitlines()
    lines[2] = json.dumps({**json.loads(lines[2]), "organization": "int_short"})
    backup.write_text("\n".join(lines) + "\n")
    target = target_of(cli_settings)

    result = hookline(target, "registry", "import", "-i", str(backup))

    assert result.returncode == 2
    assert result.stderr.startswith("hookline: error: nothing was imported: 1 line is invalid")
    assert "line 3: organization: String should match pattern" in result.stderr
    assert "line 1" not in result.stderr and "line 4" not in result.stderr
    assert "Traceback" not in result.stderr
    assert await everything_under(redis, target.redis_key_prefix) == {}


async def test_a_redacted_export_holds_no_secret_and_imports_only_once_they_are_filled_in(
    cli_settings: Settings, redis: Redis, tmp_path: Path
) -> None:
    org = new_organization_id()
    webhook_id = await two_channels(redis, cli_settings, org)
    backup = tmp_path / "redacted.jsonl"
    target = target_of(cli_settings)

    exported = hookline(
        cli_settings, "registry", "export", "--secrets", "redacted", "-o", str(backup)
    )
    refused = hookline(target, "registry", "import", "-i", str(backup))
    written_meanwhile = await everything_under(redis, target.redis_key_prefix)
    record = json.loads(backup.read_text())
    channels = record["webhook"]["channels"]
    channels[0]["configs"]["secret"] = FILLED_SECRET
    channels[1]["configs"]["webhook_url"] = SLACK_URL
    backup.write_text(json.dumps(record) + "\n")
    filled = hookline(target, "registry", "import", "-i", str(backup))

    assert exported.returncode == 0, exported.stderr
    assert "secrets are redacted" in exported.stderr
    stored = await store_of(redis, cli_settings).get(org, webhook_id)
    http = stored.channels[0]
    assert isinstance(http, HttpChannel)
    assert http.configs.secret.get_secret_value() not in backup.read_text().replace(
        FILLED_SECRET, ""
    )
    assert refused.returncode == 2
    assert (
        "line 1: webhook.channels.0.configs.secret, webhook.channels.1.configs.webhook_url: "
        "'**********' stands for a secret"
    ) in refused.stderr
    assert written_meanwhile == {}
    assert filled.returncode == 0, filled.stderr
    restored = await store_of(redis, target).get(org, webhook_id)
    [signed, slack] = restored.channels
    assert isinstance(signed, HttpChannel) and isinstance(slack, SlackChannel)
    assert signed.configs.secret.get_secret_value() == FILLED_SECRET
    assert slack.configs.webhook_url is not None
    assert slack.configs.webhook_url.get_secret_value() == SLACK_URL


async def test_an_encrypted_export_imports_only_where_its_key_is_listed(
    cli_settings: Settings, redis: Redis, tmp_path: Path
) -> None:
    org = new_organization_id()
    webhook_id = await two_channels(redis, cli_settings, org)
    backup = tmp_path / "encrypted.jsonl"
    assert hookline(cli_settings, "registry", "export", "-o", str(backup)).returncode == 0
    assert cli_settings.secret_keys is not None
    old_key, new_key = cli_settings.secret_keys.get_secret_value(), RecordCipher.generate_key()
    elsewhere = target_of(cli_settings, secret_keys=SecretStr(new_key))
    rotated = target_of(cli_settings, secret_keys=SecretStr(f"{new_key},{old_key}"))

    refused = hookline(elsewhere, "registry", "import", "-i", str(backup))
    accepted = hookline(rotated, "registry", "import", "-i", str(backup))

    assert refused.returncode == 2
    assert "line 1: encrypted: no key of HOOKLINE_SECRET_KEYS decrypts it" in refused.stderr
    assert accepted.returncode == 0, accepted.stderr
    original = await store_of(redis, cli_settings).get(org, webhook_id)
    assert await store_of(redis, rotated).get(org, webhook_id) == original


async def test_one_organization_and_its_api_keys_move_and_the_keys_work_there(
    cli_settings: Settings, redis: Redis, tmp_path: Path
) -> None:
    moved, stays = new_organization_id(), new_organization_id()
    await two_channels(redis, cli_settings, moved)
    await two_channels(redis, cli_settings, stays)
    keys = ApiKeyStore(redis, RegistryKeys(cli_settings.redis_key_prefix))
    api_key = await keys.create(moved)
    await keys.create(stays)
    backup = tmp_path / "one.jsonl"
    target = target_of(cli_settings)

    exported = hookline(
        cli_settings, "registry", "export", "--org", moved, "--api-keys", "-o", str(backup)
    )
    imported = hookline(target, "registry", "import", "-i", str(backup))

    assert exported.returncode == 0, exported.stderr
    assert "exported 1 webhooks of 1 organizations and 1 API key hashes" in exported.stderr
    text = backup.read_text()
    assert stays not in text and api_key not in text
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert imported.returncode == 0, imported.stderr
    moved_keys = ApiKeyStore(redis, RegistryKeys(target.redis_key_prefix))
    assert await moved_keys.organization_of(api_key) == moved
    assert await store_of(redis, target).organizations() == [moved]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["export", "--org", "int_x}:y"], "internal_id"),
        (["export", "--secrets", "clear"], "invalid choice"),
        (["export", "-o", "/nonexistent/dir/out.jsonl"], "cannot write /nonexistent/dir"),
        (["import", "-i", "/nonexistent/in.jsonl"], "cannot read /nonexistent/in.jsonl"),
    ],
)
def test_bad_arguments_are_one_line_errors(
    cli_settings: Settings, args: list[str], message: str
) -> None:
    result = hookline(cli_settings, "registry", *args)

    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
