"""Notices reach the organization's contact through any kind of channel, and how each went is
kept on the contact."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis

from hookline.channels.catalog import ChannelCatalog
from hookline.demo.peers.http_receiver import HttpReceiver
from hookline.demo.peers.smtp_server import SmtpReceiver
from hookline.registry import RegistryKeys, WebhookStore
from hookline.registry.contacts import ContactStore
from hookline.registry.encryption import RecordCipher
from hookline.schemas import EmailChannel, HttpChannel, Webhook, new_organization_id
from hookline.schemas.common import utc_now
from hookline.schemas.operations import OperationalEvent, OperationalEventType
from hookline.settings import Settings, SmtpSettings
from hookline.worker.owner_notices import OwnerNotices
from tests.worker.conftest import create_webhook, http_channel
from tests.worker.support import Script


@pytest.fixture
def smtp_server() -> Iterator[SmtpReceiver]:
    with SmtpReceiver() as server:
        yield server


@pytest.fixture
async def catalog(settings: Settings, smtp_server: SmtpReceiver) -> AsyncIterator[ChannelCatalog]:
    smtp = SmtpSettings(host="127.0.0.1", port=smtp_server.port, timeout=5)
    opened = await ChannelCatalog.open(settings.model_copy(update={"smtp": smtp}))
    yield opened
    await opened.aclose()


@pytest.fixture
def contacts(redis: Redis, settings: Settings, cipher: RecordCipher) -> ContactStore:
    return ContactStore(redis, RegistryKeys(settings.redis_key_prefix), cipher)


@pytest.fixture
def notices(contacts: ContactStore, store: WebhookStore, catalog: ChannelCatalog) -> OwnerNotices:
    return OwnerNotices(contacts, store, catalog)


@pytest.fixture
async def webhook(store: WebhookStore) -> Webhook:
    org = new_organization_id()
    return await create_webhook(
        store, org, [http_channel("https://hooks.example/in")], webhook_name="orders"
    )


def disabled(webhook: Webhook) -> OperationalEvent:
    return OperationalEvent(
        type=OperationalEventType.CHANNEL_DISABLED,
        organization=webhook.internal_id,
        webhook=webhook.webhook_id,
        details={
            "channel_index": 0,
            "channel": "webhook",
            "reason": "no delivery succeeded for 5 days; the last attempt failed: HTTP 500",
        },
    )


async def test_an_email_contact_gets_a_readable_notice(
    notices: OwnerNotices, contacts: ContactStore, webhook: Webhook, smtp_server: SmtpReceiver
) -> None:
    email = EmailChannel.model_validate(
        {"channel": "email", "configs": {"to_addresses": ["oncall@example.com"]}}
    )
    await contacts.put(webhook.internal_id, email, utc_now())

    await notices.tell(disabled(webhook))

    [mail] = smtp_server.messages
    assert mail.rcpt_tos == ("oncall@example.com",)
    assert mail.message["Subject"] == "[hookline] hookline.channel.disabled — orders"
    body = mail.message.get_content()
    assert f"Channel 0 (webhook) of webhook 'orders' ({webhook.webhook_id}) is disabled" in body
    assert f"POST /v1/organizations/webhooks/{webhook.webhook_id}/channels/0/enable" in body
    contact = await contacts.get(webhook.internal_id)
    assert contact is not None and contact.last_success_at is not None
    assert contact.last_error is None


async def test_a_notice_that_fails_is_kept_on_the_contact_and_others_are_not_notices(
    notices: OwnerNotices, contacts: ContactStore, webhook: Webhook, receiver: HttpReceiver
) -> None:
    script = Script(then=(503, {}))
    receiver.answer = script
    endpoint = HttpChannel.model_validate(http_channel(receiver.url("/notices")))
    await contacts.put(webhook.internal_id, endpoint, utc_now())
    alarm = OperationalEvent(
        type=OperationalEventType.DEAD_LETTERS_THRESHOLD_REACHED,
        organization=webhook.internal_id,
        details={"count": 100},
    )

    await notices.tell(alarm)  # for operators: not a notice
    await notices.tell(disabled(webhook))

    assert len(script.times) == 1  # one attempt: the operations topic has it too
    contact = await contacts.get(webhook.internal_id)
    assert contact is not None and contact.last_error is not None
    assert contact.last_error.status == 503 and contact.last_success_at is None


async def test_only_the_organization_s_own_contact_is_told(
    notices: OwnerNotices, contacts: ContactStore, webhook: Webhook, receiver: HttpReceiver
) -> None:
    elsewhere = HttpChannel.model_validate(http_channel(receiver.url("/notices")))
    await contacts.put(new_organization_id(), elsewhere, utc_now())

    await notices.tell(disabled(webhook))  # its organization has no contact

    assert receiver.received == []
