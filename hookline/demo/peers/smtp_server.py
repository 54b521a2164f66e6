"""A real SMTP server on loopback (aiosmtpd) that records what it receives.

Used by the email channel's tests and by `hookline demo`. It runs in its own thread, so it
serves clients on any event loop, and its replies can be scripted: `answer_next("RCPT", 451)`.
"""

from __future__ import annotations

import asyncio
import hmac
import ssl
import threading
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

__all__ = ["Command", "ReceivedMail", "SmtpReceiver"]

Command = Literal["MAIL", "RCPT", "DATA"]


@dataclass(frozen=True)
class ReceivedMail:
    """One message the server accepted."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    """The envelope recipients (Bcc included), in the order the client gave them."""
    message: EmailMessage
    raw: bytes
    login: str | None
    """The user the client logged in as, if it did."""
    tls: bool
    """Whether the session was upgraded with STARTTLS."""


class SmtpReceiver:
    """An SMTP server on loopback; with `username`/`password` it requires that login."""

    def __init__(
        self,
        *,
        username: str | None = None,
        password: str | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self._login: _Login | None = None
        if username is not None and password is not None:
            self._login = _Login(username, password)
        self._tls_context = tls_context
        self._lock = threading.Lock()
        self._messages: list[ReceivedMail] = []
        self._next_replies: dict[Command, str] = {}
        self._controller: _Controller | None = None

    def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Listen on `host`:`port` (0 picks a free port) and serve in a background thread."""
        options: dict[str, Any] = {}
        if self._login is not None:
            options = {"auth_require_tls": False, "authenticator": self._login}
        self._controller = _Controller(
            _Handler(self),
            hostname=host,
            port=port,
            server_hostname="smtp.hookline.test",
            tls_context=self._tls_context,
            **options,
        )
        self._controller.start()

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpReceiver:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def host(self) -> str:
        """The address the server listens on."""
        return str(self._running().hostname)

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self._running().port)

    @property
    def messages(self) -> list[ReceivedMail]:
        """Every message accepted so far, oldest first."""
        with self._lock:
            return list(self._messages)

    def answer_next(
        self, command: Command, code: int, text: str = "answer set by the test"
    ) -> None:
        """Answer the next `command` with `code` instead of accepting it."""
        with self._lock:
            self._next_replies[command] = f"{code} {text}"

    def _running(self) -> _Controller:
        if self._controller is None:
            raise RuntimeError("the SMTP server is not running; call start() first")
        return self._controller

    def _take_reply(self, command: Command) -> str | None:
        with self._lock:
            return self._next_replies.pop(command, None)

    def _record(self, mail: ReceivedMail) -> None:
        with self._lock:
            self._messages.append(mail)


@dataclass(frozen=True)
class _Login:
    """The one login the server accepts: an aiosmtpd authenticator."""

    username: str
    password: str = field(repr=False)

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        matches = (
            isinstance(data, LoginPassword)
            and hmac.compare_digest(data.login, self.username.encode())
            and hmac.compare_digest(data.password, self.password.encode())
        )
        return AuthResult(success=matches, handled=False, auth_data=data if matches else None)


class _Handler:
    """aiosmtpd hooks: scripted answers first, else accept and record."""

    def __init__(self, receiver: SmtpReceiver) -> None:
        self._receiver = receiver

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        # aiosmtpd's own auth_required warns without TLS (an error under the test settings).
        if self._receiver._login is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        reply = self._receiver._take_reply("MAIL")
        if reply is None:
            envelope.mail_from = address
            envelope.mail_options.extend(options)
        return reply or "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self._receiver._take_reply("RCPT")
        if reply is None:
            envelope.rcpt_tos.append(address)
        return reply or "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = self._receiver._take_reply("DATA")
        if reply is not None:
            return reply
        raw = envelope.original_content or b""
        # Parsed with "\n" line ends, as a mail client stores it; `raw` keeps the wire's CRLF.
        message = BytesParser(policy=policy.default).parsebytes(raw.replace(b"\r\n", b"\n"))
        auth = session.auth_data
        login = auth.login.decode() if isinstance(auth, LoginPassword) else None
        self._receiver._record(
            ReceivedMail(
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                message=message,
                raw=raw,
                login=login,
                tls=session.ssl is not None,
            )
        )
        return "250 2.0.0 OK: queued"


class _Controller(Controller):
    """aiosmtpd's threaded controller, able to listen on port 0."""

    def _trigger_server(self) -> None:
        # The base class connects to `self.port` to finish starting; learn the port chosen first.
        if not isinstance(self.server, asyncio.Server):
            raise RuntimeError("aiosmtpd did not start its server; the port is unknown")
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]
