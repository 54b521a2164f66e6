"""Email deliveries through the operator's SMTP server (aiosmtplib)."""

from __future__ import annotations

import json
import logging
import re
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from html import escape
from html.parser import HTMLParser
from typing import ClassVar, Literal

import aiosmtplib
from aiosmtplib import (
    SMTPAuthenticationError,
    SMTPConnectError,
    SMTPConnectResponseError,
    SMTPDataError,
    SMTPHeloError,
    SMTPRecipientsRefused,
    SMTPResponse,
    SMTPResponseException,
    SMTPSenderRefused,
    SMTPServerDisconnected,
    SMTPTimeoutError,
)

from hookline.channels.base import (
    DeliveryChannel,
    Destination,
    configs_of,
    excerpt,
    own_endpoint,
)
from hookline.channels.context import ChannelContext
from hookline.channels.recipients import note_reached, still_due
from hookline.channels.templates import template_context
from hookline.errors import DeliveryError
from hookline.schemas import EmailConfigs, Notification
from hookline.schemas.common import FailureScope, utc_now
from hookline.schemas.text import control_character

logger = logging.getLogger(__name__)

DEFAULT_SUBJECT = "[hookline] {{ event.type }} — {{ webhook.name }}"
"""The subject when a webhook sets no `subject_template`."""
SMTP_ACCEPTED = 250

_TRANSIENT = (SMTPConnectError, SMTPServerDisconnected, SMTPTimeoutError, OSError)
_REFUSED_AT: dict[type[SMTPResponseException], str] = {
    SMTPAuthenticationError: "refused the login (HOOKLINE_SMTP_USERNAME, HOOKLINE_SMTP_PASSWORD)",
    SMTPConnectResponseError: "refused the connection",
    SMTPHeloError: "refused the greeting",
    SMTPSenderRefused: "refused the sender",
    SMTPDataError: "refused the message",
}


class SmtpEmailChannel(DeliveryChannel):
    """Sends each notification as one email through the SMTP server in `settings.smtp`."""

    name: ClassVar[str] = "email"
    # Email configs hold only addresses and templates; the SMTP password lives in settings.
    secret_fields: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, context: ChannelContext) -> None:
        self._smtp = context.smtp
        self._renderer = context.renderer
        self._reached = context.reached
        self._server = f"SMTP server {self._smtp.host}:{self._smtp.port}"
        self._relay = f"smtp:{self._smtp.host}:{self._smtp.port}:{self._smtp.username or ''}"

    def destination(self, notification: Notification) -> Destination:
        """The webhook's recipients are the endpoint; the relay and its account are shared."""
        return Destination(own_endpoint(notification), self._relay)

    async def deliver(self, notification: Notification) -> int:
        """Send the email; a refusal of any recipient fails the delivery, and its retry goes only
        to the recipients not reached yet."""
        configs = configs_of(notification, EmailConfigs)
        message = await self._compose(notification, configs)
        # Bcc recipients are only in the envelope, never in a header.
        addresses = [*configs.to_addresses, *configs.cc_addresses, *configs.bcc_addresses]
        recipients = await still_due(self._reached, notification, list(dict.fromkeys(addresses)))
        if not recipients:
            return SMTP_ACCEPTED
        refused = await self._send(message, recipients)
        if refused:
            accepted = [address for address in recipients if address not in refused]
            await note_reached(self._reached, notification, accepted)
            refusals = [(address, reply.code, reply.message) for address, reply in refused.items()]
            raise self._refused(refusals, accepted)
        logger.debug(
            "email %s accepted by %s for %d recipients",
            notification.delivery_id,
            self._server,
            len(recipients),
        )
        return SMTP_ACCEPTED

    async def _compose(self, notification: Notification, configs: EmailConfigs) -> EmailMessage:
        source = configs.subject_template or DEFAULT_SUBJECT
        subject = await self._renderer.render(source, notification, field="subject_template")
        headers = {
            "From": self._smtp.from_address,
            "To": ", ".join(configs.to_addresses),
            "Cc": ", ".join(configs.cc_addresses),
            "Subject": _one_line("subject_template", subject),
            "Date": format_datetime(utc_now()),
            "Message-ID": _message_id(notification.delivery_id, self._smtp.from_address),
            "X-Hookline-Delivery-Id": notification.delivery_id,
        }
        message = EmailMessage()
        for name, value in headers.items():
            if value:
                message[name] = _one_line(f"the {name} header", value)
        _set_body(message, await self._body(notification, configs), configs.content_type)
        return message

    async def _body(self, notification: Notification, configs: EmailConfigs) -> str:
        if configs.body_template is not None:
            # An HTML body escapes the event data it shows, so data cannot add markup.
            html = configs.content_type == "html"
            return await self._renderer.render(
                configs.body_template, notification, field="body_template", html=html
            )
        text = default_body(notification)
        return f"<pre>{escape(text)}</pre>" if configs.content_type == "html" else text

    async def _send(self, message: EmailMessage, recipients: list[str]) -> dict[str, SMTPResponse]:
        """One connection per delivery: simple, and no idle connection for the server to drop."""
        smtp = self._smtp
        password = smtp.password.get_secret_value() if smtp.password else None
        try:
            refused, _ = await aiosmtplib.send(
                message,
                sender=smtp.from_address,
                recipients=recipients,
                hostname=smtp.host,
                port=smtp.port,
                username=smtp.username,
                password=password,
                use_tls=smtp.tls,
                # False, not None: None would upgrade whenever the server offers STARTTLS.
                start_tls=smtp.starttls,
                timeout=smtp.timeout,
            )
        except (aiosmtplib.SMTPException, OSError, ValueError) as exc:
            raise self._failure(exc) from exc
        return refused

    def _failure(self, exc: Exception) -> DeliveryError:
        if isinstance(exc, SMTPRecipientsRefused):
            return self._refused([(r.recipient, r.code, r.message) for r in exc.recipients], [])
        if isinstance(exc, SMTPResponseException):
            action = _REFUSED_AT.get(type(exc), "answered")
            message = f"{self._server} {action}: {exc.code} {excerpt(exc.message)}"
            # A refused message is about this email; a refused login or sender, the relay's.
            relay = not isinstance(exc, SMTPDataError)
            return DeliveryError(
                message,
                retryable=not _is_final(exc.code),
                status=exc.code if exc.code > 0 else None,
                scope=FailureScope.HOST if relay else FailureScope.ENDPOINT,
            )
        if isinstance(exc, _TRANSIENT):
            return DeliveryError(
                f"connection to {self._server} failed: {excerpt(str(exc))}",
                retryable=True,
                scope=FailureScope.HOST,
            )
        # A missing extension (AUTH, STARTTLS, SMTPUTF8) or an unsendable address stays so.
        reason = excerpt(str(exc))
        return DeliveryError(f"{self._server} cannot take this message: {reason}", retryable=False)

    def _refused(self, refusals: list[tuple[str, int, str]], accepted: list[str]) -> DeliveryError:
        listed = "; ".join(f"{address}: {code} {excerpt(text)}" for address, code, text in refusals)
        message = f"{self._server} refused recipients {listed}"
        if accepted:
            # Still a failure, so no recipient is lost silently; the retry skips these.
            message += f"; it accepted {', '.join(accepted)}"
        transient = [code for _, code, _ in refusals if not _is_final(code)]
        status = transient[0] if transient else refusals[0][1]
        return DeliveryError(message, retryable=bool(transient), status=status)


def default_body(notification: Notification) -> str:
    """The body when a webhook sets no `body_template`: the event's fields and data as JSON."""
    context = template_context(notification)
    event, webhook = context["event"], context["webhook"]
    data = json.dumps(event["data"], indent=2, ensure_ascii=False, sort_keys=True)
    return (
        f"Event {event['type']} for webhook {webhook['name']}\n\n"
        f"Event type:   {event['type']}\n"
        f"Event id:     {event['id']}\n"
        f"Occurred at:  {event['occurred_at']}\n"
        f"Delivery id:  {notification.delivery_id}\n\n"
        f"Data:\n{data}\n"
    )


def html_to_text(html: str) -> str:
    """Readable plain text of an HTML body: tags dropped, blocks on their own lines."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = "".join(parser.parts).split("\n")
    text = "\n".join(line.rstrip() for line in lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


_LINE_BEFORE = frozenset(
    {"br", "p", "div", "tr", "table", "pre", "ul", "ol", "blockquote", "hr"}
    | {"h1", "h2", "h3", "h4", "h5", "h6"}
)
_LINE_AFTER = _LINE_BEFORE - {"br", "hr"}
_HIDDEN = frozenset({"head", "script", "style", "title"})


class _TextExtractor(HTMLParser):
    """Collects the text of an HTML document, keeping `<pre>` as written."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._depth = {"hidden": 0, "pre": 0}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._count(tag, 1)
        if tag == "li":
            self.parts.append("\n- ")
        elif tag in _LINE_BEFORE:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        self._count(tag, -1)
        if tag in _LINE_AFTER:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._depth["hidden"]:
            return
        if not self._depth["pre"]:
            data = re.sub(r"\s+", " ", data)
            if not self.parts or self.parts[-1].endswith(("\n", "- ")):
                data = data.lstrip()
        self.parts.append(data)

    def _count(self, tag: str, step: int) -> None:
        kind = "hidden" if tag in _HIDDEN else "pre" if tag == "pre" else None
        if kind is not None:
            self._depth[kind] = max(0, self._depth[kind] + step)


def _set_body(message: EmailMessage, body: str, content_type: Literal["text", "html"]) -> None:
    if content_type == "html":
        # A plain-text alternative for clients that do not show HTML (and for spam filters).
        message.set_content(html_to_text(body))
        message.add_alternative(body, subtype="html")
    else:
        message.set_content(body)


def _one_line(what: str, value: str) -> str:
    # Event data can bring any character into a rendered subject; a line break could inject
    # headers, and the email package refuses other separators (U+0085, U+2028) with a bare error.
    problem = control_character(value)
    if problem:
        raise DeliveryError(
            f"{what} {problem}; refused, as it could inject headers", retryable=False
        )
    return value


def _message_id(delivery_id: str, from_address: str) -> str:
    # The same on every attempt, so mail clients that dedupe on Message-ID drop a retried copy.
    domain = parseaddr(from_address)[1].rpartition("@")[2] or "hookline.invalid"
    return f"<{delivery_id}@{domain}>"


def _is_final(code: int) -> bool:
    """SMTP 5xx replies are permanent; 4xx (and anything unexpected) may pass on a retry."""
    return 500 <= code < 600
