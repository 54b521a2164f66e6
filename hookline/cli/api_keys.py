"""`hookline keys create|revoke`: issue and revoke the API keys of organizations."""

from __future__ import annotations

import argparse

from hookline.cli.running import Subcommands, UsageError, organization_arg, redis_client
from hookline.registry import ApiKeyStore, RegistryKeys
from hookline.schemas import new_organization_id
from hookline.settings import Settings


def add_commands(commands: Subcommands) -> None:
    """Add `keys create` and `keys revoke`."""
    keys = commands.add_parser("keys", help="issue and revoke API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create", help="issue a key (and an organization)")
    create.add_argument(
        "--org", type=organization_arg, help="the organization's internal_id; new one if omitted"
    )
    create.set_defaults(run=_create)
    revoke = key_commands.add_parser("revoke", help="make a key unusable")
    revoke.add_argument("key")
    revoke.set_defaults(run=_revoke)


async def _create(settings: Settings, args: argparse.Namespace) -> None:
    org = args.org or new_organization_id()
    if args.org is None:
        print(f"organization: {org}")
    async with redis_client(settings) as redis:
        key = await ApiKeyStore(redis, RegistryKeys(settings.redis_key_prefix)).create(org)
    print(key)


async def _revoke(settings: Settings, args: argparse.Namespace) -> None:
    async with redis_client(settings) as redis:
        revoked = await ApiKeyStore(redis, RegistryKeys(settings.redis_key_prefix)).revoke(args.key)
    if not revoked:
        raise UsageError("no such API key (already revoked, or never issued)")
    print("revoked")
