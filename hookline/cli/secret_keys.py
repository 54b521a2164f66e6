"""`hookline secrets generate-key|rotate`: the keys that encrypt webhooks in Redis."""

from __future__ import annotations

import argparse

from hookline.cli.running import Subcommands, redis_client
from hookline.registry import RegistryKeys, WebhookStore
from hookline.registry.encryption import RecordCipher, record_cipher
from hookline.settings import Settings


def add_commands(commands: Subcommands) -> None:
    """Add `secrets generate-key` and `secrets rotate`."""
    secrets = commands.add_parser("secrets", help="the keys that encrypt webhooks in Redis")
    secret_commands = secrets.add_subparsers(dest="secrets_command", required=True)
    secret_commands.add_parser(
        "generate-key", help="print a new key for HOOKLINE_SECRET_KEYS"
    ).set_defaults(run=_generate_key)
    secret_commands.add_parser(
        "rotate",
        help="re-encrypt every stored webhook with the first key of HOOKLINE_SECRET_KEYS "
        "(after putting a new key first; then the old keys can be dropped)",
    ).set_defaults(run=_rotate)


async def _generate_key(settings: Settings, args: argparse.Namespace) -> None:
    print(RecordCipher.generate_key())


async def _rotate(settings: Settings, args: argparse.Namespace) -> None:
    cipher = record_cipher(settings.secret_keys)
    async with redis_client(settings) as redis:
        store = WebhookStore(redis, RegistryKeys(settings.redis_key_prefix), cipher)
        rewritten = await store.reencrypt_all()
    print(f"re-encrypted {rewritten} webhooks with the first key of HOOKLINE_SECRET_KEYS")
