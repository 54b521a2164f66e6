"""The email channel against a real aiosmtpd server on loopback."""

from __future__ import annotations

import base64
import logging
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from hookline.channels.context import ChannelContext
from hookline.channels.recipients import RecipientLedger
from hookline.channels.smtp_email import SmtpEmailChannel
from hookline.channels.templates import TemplateRenderer
from hookline.demo.peers.smtp_server import SmtpReceiver
from hookline.registry import ReachedRecipients, RegistryKeys
from hookline.schemas import DeliveryAttempt, DeliveryOutcome, Notification
from hookline.schemas.common import FailureScope
from hookline.settings import Settings, SmtpSettings
from tests.channels.contract import ChannelContract, notification_for
from tests.conftest import free_port

SENDER = "alerts@hookline.example.com"
USERNAME = "hookline-user"
PASSWORD = "pw-Zq81-never-logged"

BuildChannel = Callable[..., SmtpEmailChannel]


@pytest.fixture
def smtp_server() -> Iterator[SmtpReceiver]:
    with SmtpReceiver() as server:
        yield server


@pytest.fixture
def auth_server() -> Iterator[SmtpReceiver]:
    with SmtpReceiver(username=USERNAME, password=PASSWORD) as server:
        yield server


@pytest.fixture
async def build_channel() -> AsyncIterator[BuildChannel]:
    """Builds an email channel for an SMTP server given as SmtpSettings fields."""
    sessions: list[aiohttp.ClientSession] = []

    def build(reached: RecipientLedger | None = None, **smtp: Any) -> SmtpEmailChannel:
        sessions.extend([aiohttp.ClientSession(), aiohttp.ClientSession()])
        settings = Settings(smtp=SmtpSettings(host="127.0.0.1", from_address=SENDER, **smtp))
        context = ChannelContext(
            slack=settings.slack,
            smtp=settings.smtp,
            twilio=settings.twilio,
            guarded_http=sessions[-2],
            api_http=sessions[-1],
            renderer=TemplateRenderer(settings.template_budget),
            reached=reached,
        )
        return SmtpEmailChannel(context)

    yield build
    for session in sessions:
        await session.close()


@pytest.fixture
async def channel(build_channel: BuildChannel, smtp_server: SmtpReceiver) -> SmtpEmailChannel:
    return build_channel(port=smtp_server.port, timeout=5)


@pytest.fixture
def channel_config() -> dict[str, Any]:
    return {"channel": "email", "configs": {"to_addresses": ["ops@example.com"]}}


@pytest.fixture
def template_field() -> str:
    return "body_template"


@pytest.fixture
def received(smtp_server: SmtpReceiver) -> Callable[[], Awaitable[int]]:
    async def count() -> int:
        return len(smtp_server.messages)

    return count


class TestSmtpEmailContract(ChannelContract):
    """The behaviour every channel shows, for email."""


def email(**configs: Any) -> Notification:
    """A notification for an email channel with these configs."""
    return notification_for({"channel": "email", "configs": configs})


async def test_message_carries_rendered_templates_and_hides_bcc(
    channel: SmtpEmailChannel, smtp_server: SmtpReceiver
) -> None:
    notification = email(
        to_addresses=["ops@example.com", "lead@example.com"],
        cc_addresses=["audit@example.com"],
        bcc_addresses=["hidden@example.com"],
        subject_template="{{ event.type }} on {{ webhook.name }}",
        body_template="Object {{ event.data.object_id }} in {{ event.data.collection_id }}",
    )
    attempt = await channel.send(notification)

    assert attempt.outcome is DeliveryOutcome.DELIVERED, attempt.error
    assert attempt.status == 250
    [mail] = smtp_server.messages
    assert mail.mail_from == SENDER
    assert mail.rcpt_tos == (
        "ops@example.com",
        "lead@example.com",
        "audit@example.com",
        "hidden@example.com",
    )
    message = mail.message
    assert message["From"] == SENDER
    assert message["To"] == "ops@example.com, lead@example.com"
    assert message["Cc"] == "audit@example.com"
    assert "Bcc" not in message
    assert b"hidden@example.com" not in mail.raw
    assert message["Subject"] == "object.created on Contract webhook"
    assert message.get_content_type() == "text/plain"
    assert message.get_content().strip() == "Object obj_123 in col_9"
    assert message["X-Hookline-Delivery-Id"] == notification.delivery_id
    assert message["Message-ID"] == f"<{notification.delivery_id}@hookline.example.com>"
    assert message["Date"] is not None


async def test_default_subject_and_body_show_the_event(
    channel: SmtpEmailChannel, smtp_server: SmtpReceiver
) -> None:
    notification = email(to_addresses=["ops@example.com"])
    event = notification.event.model_copy(
        update={"data": {"object_id": "obj_7", "note": "O'Brien <ops> & Zoë"}}
    )
    notification = notification._replace(event=event)

    attempt = await channel.send(notification)

    assert attempt.outcome is DeliveryOutcome.DELIVERED, attempt.error
    message = smtp_server.messages[0].message
    assert message["Subject"] == "[hookline] object.created — Contract webhook"
    body = message.get_content()
    assert event.event_id in body
    assert "object.created" in body
    assert event.occurred_at.isoformat().replace("+00:00", "Z") in body
    assert '  "note": "O\'Brien <ops> & Zoë",\n  "object_id": "obj_7"' in body


async def test_html_is_sent_with_a_plain_text_alternative(
    channel: SmtpEmailChannel, smtp_server: SmtpReceiver
) -> None:
    html = (
        "<html><head><style>b {color: red}</style></head><body>"
        "<h1>{{ event.type }}</h1><p>Object <b>{{ event.data.object_id }}</b> &amp; more</p>"
        "<ul><li>first</li><li>second</li></ul></body></html>"
    )
    notification = email(to_addresses=["ops@example.com"], body_template=html, content_type="html")

    attempt = await channel.send(notification)

    assert attempt.outcome is DeliveryOutcome.DELIVERED, attempt.error
    message = smtp_server.messages[0].message
    assert message.get_content_type() == "multipart/alternative"
    plain, rich = message.iter_parts()
    assert plain.get_content_type() == "text/plain"
    assert plain.get_content() == "object.created\n\nObject obj_123 & more\n\n- first\n- second\n"
    assert rich.get_content_type() == "text/html"
    assert "<h1>object.created</h1><p>Object <b>obj_123</b> &amp; more</p>" in rich.get_content()


async def test_default_html_body_escapes_event_data(
    channel: SmtpEmailChannel, smtp_server: SmtpReceiver
) -> None:
    notification = email(to_addresses=["ops@example.com"], content_type="html")
    event = notification.event.model_copy(update={"data": {"title": "<script>x</script>"}})
    attempt = await channel.send(notification._replace(event=event))

    assert attempt.outcome is DeliveryOutcome.DELIVERED, attempt.error
    plain, rich = smtp_server.messages[0].message.iter_parts()
    assert "&lt;script&gt;" in rich.get_content()
    assert "<script>" not in rich.get_content()
    assert '"title": "<script>x</script>"' in plain.get_content()


async def test_an_html_body_template_escapes_event_data_and_the_subject_keeps_it(
    channel: SmtpEmailChannel, smtp_server: SmtpReceiver
) -> None:
    notification = email(
        to_addresses=["ops@example.com"],
        subject_template="New: {{ event.data.name }}",
        body_template="<p>{{ event.data.name }}</p>",
        content_type="html",
    )
    event = notification.event.model_copy(update={"data": {"name": "<script>x</script>"}})

    attempt = await channel.send(notification._replace(event=event))

    assert attempt.outcome is DeliveryOutcome.DELIVERED, attempt.error
    message = smtp_server.messages[0].message
    plain, rich = message.iter_parts()
    assert "<p>&lt;script&gt;x&lt;/script&gt;</p>" in rich.get_content()
    assert "<script>" not in rich.get_content()
    assert plain.get_content() == "<script>x</script>\n"
    assert message["Subject"] == "New: <script>x</script>"


async def test_logs_in_with_username_and_password(
    build_channel: BuildChannel, auth_server: SmtpReceiver
) -> None:
    channel = build_channel(port=auth_server.port, username=USERNAME, password=PASSWORD)

    attempt = await channel.send(email(to_addresses=["ops@example.com"]))

    assert attempt.outcome is DeliveryOutcome.DELIVERED, attempt.error
    [mail] = auth_server.messages
    assert mail.login == USERNAME


async def test_without_login_the_server_refuses_permanently(
    build_channel: BuildChannel, auth_server: SmtpReceiver
) -> None:
    channel = build_channel(port=auth_server.port)

    attempt = await channel.send(email(to_addresses=["ops@example.com"]))

    assert_failed(attempt, DeliveryOutcome.PERMANENT, 530)
    assert auth_server.messages == []


async def test_wrong_password_is_permanent_and_never_logged(
    build_channel: BuildChannel, auth_server: SmtpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "wrong-" + PASSWORD
    channel = build_channel(port=auth_server.port, username=USERNAME, password=wrong)
    caplog.set_level(logging.DEBUG)

    attempt = await channel.send(email(to_addresses=["ops@example.com"]))

    assert_failed(attempt, DeliveryOutcome.PERMANENT, 535)
    assert "login" in (attempt.error or "")
    assert attempt.scope is FailureScope.HOST  # the relay's login: every webhook's email
    assert auth_server.messages == []
    assert caplog.records, "expected the client and server to log at DEBUG"
    for secret in (wrong, base64.b64encode(wrong.encode()).decode()):
        assert secret not in caplog.text
        assert secret not in (attempt.error or "")
        assert secret not in attempt.model_dump_json()


@pytest.mark.parametrize(
    ("command", "code", "outcome"),
    [
        ("RCPT", 451, DeliveryOutcome.RETRYABLE),
        ("DATA", 451, DeliveryOutcome.RETRYABLE),
        ("MAIL", 452, DeliveryOutcome.RETRYABLE),
        ("RCPT", 550, DeliveryOutcome.PERMANENT),
        ("DATA", 554, DeliveryOutcome.PERMANENT),
    ],
)
async def test_smtp_replies_decide_whether_to_retry(
    channel: SmtpEmailChannel,
    smtp_server: SmtpReceiver,
    command: Any,
    code: int,
    outcome: DeliveryOutcome,
) -> None:
    smtp_server.answer_next(command, code, "scripted refusal")

    attempt = await channel.send(email(to_addresses=["ops@example.com"]))

    assert_failed(attempt, outcome, code)
    assert "scripted refusal" in (attempt.error or "")
    assert smtp_server.messages == []


async def test_a_long_reply_is_kept_as_an_excerpt(
    channel: SmtpEmailChannel, smtp_server: SmtpReceiver
) -> None:
    smtp_server.answer_next("DATA", 554, "R" * 4000)

    attempt = await channel.send(email(to_addresses=["ops@example.com"]))

    assert attempt.error is not None and attempt.error.endswith("RRR… (4000 bytes)")
    assert len(attempt.error) < 400


@pytest.mark.parametrize(
    ("code", "outcome"), [(550, DeliveryOutcome.PERMANENT), (451, DeliveryOutcome.RETRYABLE)]
)
async def test_a_partly_refused_message_fails_and_names_the_recipients(
    channel: SmtpEmailChannel, smtp_server: SmtpReceiver, code: int, outcome: DeliveryOutcome
) -> None:
    smtp_server.answer_next("RCPT", code, "no such user")
    notification = email(to_addresses=["gone@example.com"], cc_addresses=["ops@example.com"])

    attempt = await channel.send(notification)

    assert_failed(attempt, outcome, code)
    assert attempt.scope is FailureScope.ENDPOINT  # this webhook's recipients
    assert f"gone@example.com: {code} no such user" in (attempt.error or "")
    assert "accepted ops@example.com" in (attempt.error or "")
    [mail] = smtp_server.messages
    assert mail.rcpt_tos == ("ops@example.com",)


async def test_a_retry_goes_only_to_the_recipients_the_server_refused(
    build_channel: BuildChannel, smtp_server: SmtpReceiver, redis: Redis, settings: Settings
) -> None:
    ledger = ReachedRecipients(redis, RegistryKeys(settings.redis_key_prefix), ttl=600)
    channel = build_channel(reached=ledger, port=smtp_server.port, timeout=5)
    smtp_server.answer_next("RCPT", 451, "mailbox busy")
    notification = email(to_addresses=["busy@example.com"], cc_addresses=["ops@example.com"])

    first = await channel.send(notification)
    retry = await channel.send(notification._replace(attempt=2))

    assert_failed(first, DeliveryOutcome.RETRYABLE, 451)
    assert retry.outcome is DeliveryOutcome.DELIVERED
    assert [mail.rcpt_tos for mail in smtp_server.messages] == [
        ("ops@example.com",),
        ("busy@example.com",),
    ]
    assert smtp_server.messages[1].message["Cc"] == "ops@example.com", "its headers name all"


async def test_closed_port_is_retryable(build_channel: BuildChannel) -> None:
    closed_port = free_port()
    channel = build_channel(port=closed_port, timeout=5)

    attempt = await channel.send(email(to_addresses=["ops@example.com"]))

    assert_failed(attempt, DeliveryOutcome.RETRYABLE, None)
    assert f"127.0.0.1:{closed_port}" in (attempt.error or "")


@pytest.mark.parametrize("separator", ["\r\n", "\n", "\x0b", "\x85", "\u2028", "\x00"])
async def test_a_control_character_from_event_data_in_the_subject_is_refused(
    channel: SmtpEmailChannel, smtp_server: SmtpReceiver, separator: str
) -> None:
    subject_template = "Alert: {{ event.data.title }}"
    notification = email(to_addresses=["ops@example.com"], subject_template=subject_template)
    title = f"x{separator}Bcc: evil@example.com"
    event = notification.event.model_copy(update={"data": {"title": title}})

    attempt = await channel.send(notification._replace(event=event))

    assert_failed(attempt, DeliveryOutcome.PERMANENT, None)
    assert "subject_template" in (attempt.error or "")
    assert f"U+{ord(separator[0]):04X}" in (attempt.error or "")
    assert "internal error" not in (attempt.error or "")
    assert smtp_server.messages == []


async def test_required_starttls_is_not_skipped(
    build_channel: BuildChannel, smtp_server: SmtpReceiver
) -> None:
    channel = build_channel(port=smtp_server.port, starttls=True)

    attempt = await channel.send(email(to_addresses=["ops@example.com"]))

    assert_failed(attempt, DeliveryOutcome.PERMANENT, None)
    assert "STARTTLS" in (attempt.error or "")
    assert smtp_server.messages == []


async def test_starttls_off_means_no_upgrade_even_when_offered(
    build_channel: BuildChannel, tmp_path: Path
) -> None:
    # The server's certificate is self-signed: an opportunistic upgrade would fail to verify it.
    with SmtpReceiver(tls_context=self_signed_context(tmp_path)) as server:
        channel = build_channel(port=server.port, starttls=False)

        attempt = await channel.send(email(to_addresses=["ops@example.com"]))

        assert attempt.outcome is DeliveryOutcome.DELIVERED, attempt.error
        assert server.messages[0].tls is False


def assert_failed(attempt: DeliveryAttempt, outcome: DeliveryOutcome, status: int | None) -> None:
    """The attempt ended with `outcome` and `status`, and says why."""
    assert (attempt.outcome, attempt.status) == (outcome, status), attempt.error
    assert attempt.error


def self_signed_context(directory: Path) -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate for localhost."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = directory / "cert.pem", directory / "key.pem"
    command = [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
    command += ["-nodes", "-days", "1", "-subj", "/CN=localhost", "-keyout", str(key)]
    subprocess.run([*command, "-out", str(cert)], check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context
