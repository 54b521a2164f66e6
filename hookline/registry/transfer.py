"""The registry as JSON lines, for `hookline registry export` and `import`: backup, restore, and
moving webhooks between deployments.

One record a line. A webhook: `{"format": 1, "kind": "webhook", "organization", "webhook_id"}`
and either `encrypted`, the stored token of its whole configuration (only a deployment that
lists the key it was written with can import it), or `webhook`, the webhook with each secret
shown as "**********" (importing it needs each one replaced by the real secret). An API key:
`{"format": 1, "kind": "api_key", "organization", "key_sha256"}`, its hash (a key itself is
never stored). Import checks every line before it writes any, and writing is idempotent.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import StringConstraints, ValidationError

from hookline.errors import RegistryError
from hookline.registry.api_keys import ApiKeyStore
from hookline.registry.encryption import RecordDecryptionError
from hookline.registry.store import SealedWebhook, WebhookStore
from hookline.schemas import REDACTED, Channel, Webhook
from hookline.schemas.common import OrganizationId, StrictModel
from hookline.schemas.webhooks import WebhookId

FORMAT: Literal[1] = 1
"""The version of the record format this hookline writes and reads."""
MAX_REPORTED = 20
"""Invalid lines an import refusal lists (it counts them all)."""

_OUTCOMES = {"last_error", "last_success_at"}


class SecretsMode(StrEnum):
    """How an export writes webhooks: as stored (encrypted) or readable with secrets redacted."""

    ENCRYPTED = "encrypted"
    REDACTED = "redacted"


class WebhookRecord(StrictModel):
    """One webhook of an export; exactly one of `encrypted` and `webhook`."""

    format: Literal[1]
    kind: Literal["webhook"]
    organization: OrganizationId
    webhook_id: WebhookId
    encrypted: str | None = None
    webhook: dict[str, Any] | None = None


class ApiKeyRecord(StrictModel):
    """One API key of an export, by its SHA-256."""

    format: Literal[1]
    kind: Literal["api_key"]
    organization: OrganizationId
    key_sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


_RECORDS: dict[Any, type[WebhookRecord | ApiKeyRecord]] = {
    "webhook": WebhookRecord,
    "api_key": ApiKeyRecord,
}

RedactChannel = Callable[[Channel], Channel]
"""Hides the secrets of a channel that the schema cannot (a plugin's, as its channel declares)."""


@dataclass
class Exported:
    """What an export wrote."""

    webhooks: int = 0
    organizations: set[str] = field(default_factory=set)
    api_keys: int = 0


class RegistryExport:
    """Writes the webhooks (and, if asked, the API key hashes) of one or every organization."""

    def __init__(
        self,
        store: WebhookStore,
        api_keys: ApiKeyStore,
        secrets: SecretsMode,
        redact: RedactChannel,
    ) -> None:
        self._store = store
        self._api_keys = api_keys
        self._secrets = secrets
        self._redact = redact
        self.done = Exported()

    async def batches(self, org: str | None, *, api_keys: bool) -> AsyncIterator[list[str]]:
        """The records as JSON lines: an organization's webhooks at a time, then the API keys."""
        for owner in [org] if org else await self._store.organizations():
            lines = [self._webhook_line(s) async for s in self._store.sealed(owner)]
            self.done.webhooks += len(lines)
            if lines:
                self.done.organizations.add(owner)
            yield lines
        if api_keys:
            hashes = await self._api_keys.hashes(org)
            self.done.api_keys = len(hashes)
            yield [
                ApiKeyRecord.model_construct(
                    format=FORMAT, kind="api_key", organization=owner, key_sha256=key_hash
                ).model_dump_json()
                for owner, key_hash in hashes
            ]

    def _webhook_line(self, sealed: SealedWebhook) -> str:
        # Not validated here: what is stored is written as it is, and the import checks it.
        record = WebhookRecord.model_construct(
            format=FORMAT, kind="webhook", organization=sealed.org, webhook_id=sealed.webhook_id
        )
        if self._secrets is SecretsMode.ENCRYPTED:
            record.encrypted = sealed.token
        else:
            webhook = self._store.unseal(sealed.token)
            shown = webhook.model_copy(
                update={"channels": list(map(self._redact, webhook.channels))}
            )
            record.webhook = shown.model_dump(mode="json", exclude=_OUTCOMES)
        return record.model_dump_json(exclude_none=True)


class ImportRefusedError(RegistryError):
    """Lines of an import are invalid; nothing was written. `problems` has one per line."""

    def __init__(self, problems: list[str]) -> None:
        shown = problems[:MAX_REPORTED]
        more = f"\n(and {len(problems) - len(shown)} more)" if len(problems) > len(shown) else ""
        lines = "line is" if len(problems) == 1 else "lines are"
        super().__init__(
            f"nothing was imported: {len(problems)} {lines} invalid\n" + "\n".join(shown) + more
        )
        self.problems = problems


class _Invalid(RegistryError):
    """What is wrong with one line (without its text: it may hold a secret)."""


@dataclass(frozen=True, slots=True)
class _WebhookEntry:
    line: int
    webhook: Webhook
    token: str


@dataclass(frozen=True, slots=True)
class _ApiKeyEntry:
    line: int
    org: str
    key_hash: str


@dataclass
class Imported:
    """What an import wrote, and what it found stored already as the file has it."""

    webhooks: int = 0
    webhooks_unchanged: int = 0
    api_keys: int = 0
    api_keys_unchanged: int = 0


@dataclass
class _Plan:
    webhooks: list[_WebhookEntry] = field(default_factory=list)
    api_keys: list[_ApiKeyEntry] = field(default_factory=list)


class RegistryImport:
    """Reads an export's lines into the registry: every line is checked first (ImportRefusedError
    lists the invalid ones and nothing is written), then each record is written idempotently."""

    def __init__(self, store: WebhookStore, api_keys: ApiKeyStore) -> None:
        self._store = store
        self._api_keys = api_keys

    async def run(self, lines: Iterable[str | bytes]) -> Imported:
        """Check, then write, the records of `lines` (UTF-8 if bytes; numbered from 1)."""
        plan = self._plan(lines)
        await self._check_owners(plan)
        done = Imported()
        for entry in plan.webhooks:
            if await self._store.put(entry.webhook, entry.token):
                done.webhooks += 1
            else:
                done.webhooks_unchanged += 1
        for key in plan.api_keys:
            if await self._api_keys.put_hash(key.org, key.key_hash):
                done.api_keys += 1
            else:
                done.api_keys_unchanged += 1
        return done

    def _plan(self, lines: Iterable[str | bytes]) -> _Plan:
        plan, problems = _Plan(), []
        seen: dict[str, int] = {}
        for number, text in enumerate(lines, start=1):
            if not text.strip():
                continue
            try:
                entry = self._entry(number, text)
                what = _identity(entry)
                if what in seen:
                    raise _Invalid(f"{what} is also on line {seen[what]}")
                seen[what] = number
            except _Invalid as exc:
                problems.append(f"line {number}: {exc}")
                continue
            if isinstance(entry, _WebhookEntry):
                plan.webhooks.append(entry)
            else:
                plan.api_keys.append(entry)
        if problems:
            raise ImportRefusedError(problems)
        return plan

    def _entry(self, number: int, text: str | bytes) -> _WebhookEntry | _ApiKeyEntry:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _Invalid(f"not JSON: {exc.msg} at column {exc.colno}") from None
        except UnicodeDecodeError as exc:
            raise _Invalid(f"not UTF-8: byte {exc.start + 1} cannot be decoded") from None
        if not isinstance(raw, dict):
            raise _Invalid("not a JSON object")
        model = _RECORDS.get(raw.get("kind"))
        if model is None:
            raise _Invalid("kind: must be 'webhook' or 'api_key'")
        try:
            record = model.model_validate(raw)
        except ValidationError as exc:
            raise _Invalid(_summary(exc, "")) from None
        if isinstance(record, ApiKeyRecord):
            return _ApiKeyEntry(number, record.organization, record.key_sha256)
        webhook, token = self._webhook(record)
        if (webhook.internal_id, webhook.webhook_id) != (record.organization, record.webhook_id):
            raise _Invalid(
                "organization, webhook_id: not those of the webhook inside "
                f"({webhook.internal_id}, {webhook.webhook_id})"
            )
        return _WebhookEntry(number, webhook, token)

    def _webhook(self, record: WebhookRecord) -> tuple[Webhook, str]:
        if record.encrypted is not None and record.webhook is None:
            try:
                return self._store.unseal(record.encrypted), record.encrypted
            except RecordDecryptionError:
                raise _Invalid(
                    "encrypted: no key of HOOKLINE_SECRET_KEYS decrypts it; import where the key "
                    "that encrypted it (the exporting deployment's) is listed"
                ) from None
            except ValidationError as exc:
                raise _Invalid(
                    f"encrypted: holds an invalid webhook: {_summary(exc, '')}"
                ) from None
        if record.webhook is None or record.encrypted is not None:
            raise _Invalid("encrypted, webhook: give exactly one of them")
        redacted = _redacted(record.webhook.get("channels"), "webhook.channels")
        if redacted:
            raise _Invalid(
                f"{', '.join(redacted)}: {REDACTED!r} stands for a secret that this file does "
                "not hold (exported with --secrets redacted): put the real secret in its place, "
                "or export with --secrets encrypted"
            )
        try:
            webhook = Webhook.model_validate(record.webhook)
        except ValidationError as exc:
            raise _Invalid(_summary(exc, "webhook")) from None
        webhook = webhook.model_copy(update=dict.fromkeys(_OUTCOMES))
        return webhook, self._store.seal(webhook)

    async def _check_owners(self, plan: _Plan) -> None:
        problems = []
        for key in plan.api_keys:
            owner = await self._api_keys.owner_of_hash(key.key_hash)
            if owner not in (None, key.org):
                problems.append(
                    f"line {key.line}: key_sha256: this API key belongs to another "
                    "organization here"
                )
        if problems:
            raise ImportRefusedError(problems)


def _identity(entry: _WebhookEntry | _ApiKeyEntry) -> str:
    if isinstance(entry, _ApiKeyEntry):
        return f"the API key {entry.key_hash}"
    return f"webhook {entry.webhook.webhook_id} of {entry.webhook.internal_id}"


def _redacted(value: Any, path: str) -> list[str]:
    """Paths of the placeholders in `value`, however deeply nested."""
    if value == REDACTED:
        return [path]
    if isinstance(value, dict):
        return [found for k, item in value.items() for found in _redacted(item, f"{path}.{k}")]
    if isinstance(value, list):
        return [found for i, item in enumerate(value) for found in _redacted(item, f"{path}.{i}")]
    return []


def _summary(exc: ValidationError, prefix: str, limit: int = 5) -> str:
    """The first problems of `exc`, each at its field under `prefix`, without the input."""
    return "; ".join(
        f"{'.'.join(str(part) for part in (prefix, *e['loc']) if part != '') or 'record'}: "
        f"{e['msg']}"
        for e in exc.errors()[:limit]
    )
