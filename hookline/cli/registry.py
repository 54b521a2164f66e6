"""`hookline registry export|import`: back up, restore and move webhooks (and API key hashes)
between deployments, as JSON lines."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import IO

from hookline.cli.running import Subcommands, UsageError, organization_arg, redis_client
from hookline.registry import ApiKeyStore, RegistryKeys, WebhookStore
from hookline.registry.encryption import record_cipher
from hookline.registry.transfer import RedactChannel, RegistryExport, RegistryImport, SecretsMode
from hookline.settings import Settings


def add_commands(commands: Subcommands) -> None:
    """Add `registry export` and `registry import`."""
    registry = commands.add_parser(
        "registry", help="back up, restore and move webhooks between deployments, as JSON lines"
    )
    registry_commands = registry.add_subparsers(dest="registry_command", required=True)
    export = registry_commands.add_parser(
        "export", help="write the webhooks of one or every organization, one JSON record a line"
    )
    export.add_argument(
        "--org", type=organization_arg, help="only this organization (internal_id); all if omitted"
    )
    export.add_argument(
        "--output",
        "-o",
        default="-",
        metavar="FILE",
        help="the file to write, readable by its owner only and complete or absent; - (the "
        "default) is standard output",
    )
    export.add_argument(
        "--secrets",
        choices=[mode.value for mode in SecretsMode],
        default=SecretsMode.ENCRYPTED.value,
        help="encrypted (the default): each webhook as stored, importable where a key of "
        "HOOKLINE_SECRET_KEYS that encrypted it is listed; redacted: readable, secrets shown as "
        "'**********', which must be replaced by the real secrets before an import",
    )
    export.add_argument(
        "--api-keys",
        action="store_true",
        help="also the SHA-256 of each API key (never a key itself), so that the keys work "
        "where the file is imported",
    )
    export.set_defaults(run=_export)
    import_ = registry_commands.add_parser(
        "import",
        help="store the records of an export: every line is checked first and nothing is "
        "written if one is invalid; importing again changes nothing",
    )
    import_.add_argument(
        "--input",
        "-i",
        default="-",
        metavar="FILE",
        help="the file to read; - (the default) is standard input",
    )
    import_.set_defaults(run=_import)


async def _export(settings: Settings, args: argparse.Namespace) -> None:
    secrets = SecretsMode(args.secrets)
    cipher = record_cipher(settings.secret_keys)
    keys = RegistryKeys(settings.redis_key_prefix)
    async with redis_client(settings) as redis, _channel_redaction(settings, secrets) as redact:
        store, api_keys = WebhookStore(redis, keys, cipher), ApiKeyStore(redis, keys)
        export = RegistryExport(store, api_keys, secrets, redact)
        with _output(args.output) as out:
            async for batch in export.batches(args.org, api_keys=args.api_keys):
                await asyncio.to_thread(out.writelines, [line + "\n" for line in batch])
    done = export.done
    keys_part = f" and {done.api_keys} API key hashes" if args.api_keys else ""
    print(
        f"exported {done.webhooks} webhooks of {len(done.organizations)} organizations"
        f"{keys_part}, secrets {secrets.value}",
        file=sys.stderr,
    )
    if secrets is SecretsMode.REDACTED:
        print(
            "secrets are redacted: before this file can be imported, each '**********' must be "
            "replaced by the real secret",
            file=sys.stderr,
        )


@asynccontextmanager
async def _channel_redaction(
    settings: Settings, secrets: SecretsMode
) -> AsyncIterator[RedactChannel]:
    """What hides the secrets of plugin channels, as the API shows them (redacted exports only)."""
    if secrets is SecretsMode.ENCRYPTED:
        yield lambda channel: channel
        return
    from hookline.api.redaction import ChannelSecrets
    from hookline.channels.catalog import ChannelCatalog

    catalog = await ChannelCatalog.open(settings)
    try:
        yield ChannelSecrets(catalog).redact
    finally:
        await catalog.aclose()


@contextmanager
def _output(path: str) -> Iterator[IO[str]]:
    """Standard output for `-`; else a file readable by its owner only, which appears only once
    it is complete (a failed export leaves no partial backup)."""
    if path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    target = Path(path)
    try:
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            yield out
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


async def _import(settings: Settings, args: argparse.Namespace) -> None:
    lines = await asyncio.to_thread(_input_lines, args.input)
    cipher = record_cipher(settings.secret_keys)
    keys = RegistryKeys(settings.redis_key_prefix)
    async with redis_client(settings) as redis:
        store, api_keys = WebhookStore(redis, keys, cipher), ApiKeyStore(redis, keys)
        done = await RegistryImport(store, api_keys).run(lines)
    print(
        f"imported {done.webhooks} webhooks ({done.webhooks_unchanged} were stored as in the "
        f"file already) and {done.api_keys} API key hashes ({done.api_keys_unchanged} already)"
    )


def _input_lines(path: str) -> list[bytes]:
    """The lines of `path` (`-`: standard input), undecoded: the import names a line that is not
    UTF-8 like any other invalid line."""
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    return data.split(b"\n")
