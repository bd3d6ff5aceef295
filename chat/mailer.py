"""Outgoing email: the one place that speaks SMTP, plus a NullMailer for when SMTP_URL is not set.

SMTP_URL forms (user and password URL-encoded):

    smtp://user:pass@host:587             plain, upgraded with STARTTLS when the server offers it
    smtp://...?starttls=required          refuse to send unless STARTTLS succeeds
    smtps://user:pass@host:465            implicit TLS (default port 465)
    ...?from=Lumi%20<lumi@example.com>    envelope sender and From (default: the `default_sender` argument)
    ...?cafile=/path/ca.pem               trust this CA file instead of the system store (tests)
    ...?verify=false                      DEV ONLY: skip certificate verification

Callers catch `MailError` (never smtplib/ssl/socket errors) and retry only when `err.transient`.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import logging
import re
import smtplib
import ssl
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.errors import HeaderParseError, NonASCIILocalPartDefect
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, make_msgid
from typing import Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

from core.logs import scrub

log = logging.getLogger(__name__)

DEFAULT_SMTP_PORT = 587  # message submission (RFC 6409), the port relay providers give out for STARTTLS
DEFAULT_SMTPS_PORT = 465  # submission over implicit TLS (RFC 8314)
DEFAULT_TIMEOUT = 10.0

# Bodies go out quoted-printable/base64, never raw 8bit, so any server takes them with or without 8BITMIME.
_POLICY = SMTP_POLICY.clone(cte_type="7bit")
_QUERY_KEYS = ("from", "starttls", "verify", "cafile")
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}
# Set by Mailer itself; Email.headers may not override them.
_RESERVED_HEADERS = frozenset(
    {
        "from", "sender", "to", "cc", "bcc", "reply-to", "subject", "date", "message-id", "auto-submitted",
        "mime-version", "content-type", "content-transfer-encoding", "return-path",
    }
)  # fmt: skip
_HEADER_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 field name: printable ASCII except ':'
_MAX_REPLY = 200  # characters of a server reply kept in a MailError message


class MailError(Exception):
    """Sending failed. `transient`: retrying later may work (network, timeout, 4xx); `code`: the SMTP reply code."""

    def __init__(self, message: str, *, transient: bool, code: int | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.code = code


@dataclass(frozen=True)
class Email:
    """One plain-text message to one recipient (`to` may be `addr` or `Name <addr>`)."""

    to: str
    subject: str
    text: str
    reply_to: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


class MailSender(Protocol):
    """What callers depend on: Mailer or NullMailer, chosen by `build_mailer`."""

    def send(self, email: Email) -> str: ...


def default_sender(app_url: str | None) -> str:
    """The From used when SMTP_URL has no `from`: `Lumi <no-reply@HOST>`, HOST from APP_URL (else localhost)."""
    host = urlsplit(app_url).hostname if app_url else None
    return f"Lumi <no-reply@{host or 'localhost'}>"


def build_mailer(smtp_url: str | None, default_sender: str, timeout: float = DEFAULT_TIMEOUT) -> MailSender:
    """A Mailer for a configured SMTP_URL, else a NullMailer. ValueError (naming SMTP_URL) if it is malformed."""
    if not smtp_url:
        return NullMailer()
    return Mailer(smtp_url, default_sender, timeout)


class NullMailer:
    """No SMTP_URL configured: every send fails permanently, so escalation falls back instead of retrying."""

    def send(self, email: Email) -> str:
        raise MailError("no SMTP_URL configured", transient=False)


class Mailer:
    """Sends each Email over its own SMTP connection: no shared state, safe from many threads."""

    def __init__(self, smtp_url: str, default_sender: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        parts = urlsplit(smtp_url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError("SMTP_URL: must start with smtp:// or smtps://")
        if not parts.hostname:
            raise ValueError("SMTP_URL: must include a host name")
        try:
            port = parts.port
        except ValueError:
            port = 0
        if port == 0 or (port is None and parts.netloc.endswith(":")):
            raise ValueError("SMTP_URL: the port must be a number between 1 and 65535")
        query = _query(parts.query)

        self._host = parts.hostname
        self._implicit_tls = parts.scheme == "smtps"
        self._port = port or (DEFAULT_SMTPS_PORT if self._implicit_tls else DEFAULT_SMTP_PORT)
        self._timeout = timeout
        self._username = unquote(parts.username) if parts.username is not None else None
        self._password = unquote(parts.password) if parts.password is not None else ""
        if self._username == "":
            raise ValueError("SMTP_URL: a password needs a user name (smtp://user:pass@host)")
        sender = query.get("from")
        self._sender = _address(sender, "SMTP_URL: from") if sender else _address(default_sender, "default_sender")
        self._starttls_required = _starttls_required(query.get("starttls"), self._implicit_tls)
        self._context = _tls_context(query.get("verify"), query.get("cafile"))
        self._loopback = _is_loopback(self._host)

    @classmethod
    def from_url(cls, smtp_url: str, default_sender: str, timeout: float = DEFAULT_TIMEOUT) -> Mailer:
        """Same as the constructor; ValueError names SMTP_URL and never echoes the password."""
        return cls(smtp_url, default_sender, timeout)

    def __repr__(self) -> str:
        scheme = "smtps" if self._implicit_tls else "smtp"
        user = f"{self._username}:***@" if self._username is not None else ""
        return f"Mailer({scheme}://{user}{self._host}:{self._port})"

    def send(self, email: Email) -> str:
        """Deliver `email` to the SMTP server; return its Message-ID (`<...@domain>`).

        MailError when the server cannot be reached or refuses; ValueError when `email` itself is malformed
        (bad address, a line break in a header, a header Mailer sets itself).
        """
        message, recipient = self._compose(email)
        message_id = str(message["Message-ID"])
        local_id = message_id.strip("<>").split("@", 1)[0]  # what logs carry: the id without its domain
        started = time.monotonic()
        try:
            self._deliver(message, recipient)
        except MailError as err:
            outcome = {"transient": err.transient, "smtp_code": err.code, "error": str(err)}
            log.warning("email not sent", extra={"message_id": local_id, **outcome, "ms": _ms_since(started)})
            raise
        log.info("email sent", extra={"message_id": local_id, "ms": _ms_since(started)})
        return message_id

    def _compose(self, email: Email) -> tuple[EmailMessage, Address]:
        recipient = _address(email.to, "recipient")
        message = EmailMessage(policy=_POLICY)
        message["From"] = self._sender
        message["To"] = recipient
        if email.reply_to:
            message["Reply-To"] = _address(email.reply_to, "reply_to")
        message["Subject"] = email.subject  # the policy raises ValueError on CR/LF (header injection)
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Message-ID"] = make_msgid(domain=self._sender.domain)
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to us
        for name, value in email.headers.items():
            if not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"header name {name!r} is not valid")
            if name.lower() in _RESERVED_HEADERS:
                raise ValueError(f"header {name!r} is set by Mailer and may not be overridden")
            message[name] = value
        message.set_content(email.text, charset="utf-8")
        return message, recipient

    def _deliver(self, message: EmailMessage, recipient: Address) -> None:
        # EHLO with our own domain: smtplib's default (socket.getfqdn) may be a slow reverse-DNS lookup.
        helo = self._sender.domain
        client: smtplib.SMTP | None = None
        try:
            try:
                # The constructor connects (and sets the name TLS checks the certificate against); it closes
                # its socket itself when the greeting fails.
                if self._implicit_tls:
                    client = smtplib.SMTP_SSL(
                        self._host, self._port, local_hostname=helo, timeout=self._timeout, context=self._context
                    )
                else:
                    client = smtplib.SMTP(self._host, self._port, local_hostname=helo, timeout=self._timeout)
                client.ehlo_or_helo_if_needed()
                self._secure(client)
                if self._username is not None:
                    client.login(self._username, self._password)
                client.send_message(message, from_addr=self._sender.addr_spec, to_addrs=[recipient.addr_spec])
            except (smtplib.SMTPException, OSError) as err:
                raise self._wrap(err) from err
            # The message is accepted: a failing QUIT must not raise, or a retry would deliver it twice.
            with contextlib.suppress(smtplib.SMTPException, OSError):
                client.quit()
        finally:
            if client is not None:
                client.close()

    def _secure(self, client: smtplib.SMTP) -> None:
        if self._implicit_tls:
            return
        if client.has_extn("starttls"):
            client.starttls(context=self._context)
            client.ehlo()
        elif self._starttls_required:
            raise MailError("the SMTP server does not offer STARTTLS, which SMTP_URL requires", transient=False)
        elif self._username is not None and not self._loopback:
            # Opportunistic STARTTLS can be stripped by anyone on the path; never hand them the password.
            raise MailError(
                "refusing to send SMTP credentials without TLS: the server does not offer STARTTLS", transient=False
            )

    def _wrap(self, err: smtplib.SMTPException | OSError) -> MailError:
        """Our error for a library one: 4xx and network trouble are transient, 5xx and TLS/auth policy are not."""
        if isinstance(err, smtplib.SMTPRecipientsRefused):
            code, reply = next(iter(err.recipients.values()))
            return self._reply_error("the SMTP server refused the recipient", code, reply)
        if isinstance(err, smtplib.SMTPAuthenticationError):
            return self._reply_error("the SMTP server rejected the credentials", err.smtp_code, err.smtp_error)
        if isinstance(err, smtplib.SMTPSenderRefused):
            return self._reply_error("the SMTP server refused the sender", err.smtp_code, err.smtp_error)
        if isinstance(err, smtplib.SMTPDataError):
            return self._reply_error("the SMTP server refused the message", err.smtp_code, err.smtp_error)
        if isinstance(err, smtplib.SMTPResponseException):  # greeting, HELO, STARTTLS, AUTH, ...
            return self._reply_error("the SMTP server refused", err.smtp_code, err.smtp_error)
        if isinstance(err, smtplib.SMTPServerDisconnected):
            if isinstance(err.__context__, TimeoutError):  # smtplib reports a read timeout as a disconnect
                return MailError("timed out waiting for the SMTP server", transient=True)
            return MailError(f"the SMTP server closed the connection ({self._clean(str(err))})", transient=True)
        if isinstance(err, smtplib.SMTPException):  # a missing extension, no usable AUTH mechanism, ...
            return MailError(f"SMTP failed: {self._clean(str(err))}", transient=False)
        if isinstance(err, ssl.SSLCertVerificationError):
            return MailError(f"the SMTP server's TLS certificate was rejected: {err.verify_message}", transient=False)
        if isinstance(err, TimeoutError):
            return MailError("timed out talking to the SMTP server", transient=True)
        return MailError(f"could not talk to the SMTP server: {err.strerror or type(err).__name__}", transient=True)

    def _reply_error(self, what: str, code: int, reply: bytes | str) -> MailError:
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
        return MailError(f"{what}: {code} {self._clean(text)}", transient=not 500 <= code <= 599, code=code)

    def _clean(self, text: str) -> str:
        """A server's words, safe for logs: no addresses, no password, bounded length."""
        if self._password:
            text = text.replace(self._password, "***")
        return scrub(" ".join(text.split()))[:_MAX_REPLY]


def _query(raw: str) -> dict[str, str]:
    pairs = parse_qsl(raw, keep_blank_values=True)
    query: dict[str, str] = {}
    for key, value in pairs:
        if key not in _QUERY_KEYS:
            raise ValueError(f"SMTP_URL: unknown parameter {key!r} (known: {', '.join(_QUERY_KEYS)})")
        if key in query:
            raise ValueError(f"SMTP_URL: parameter {key!r} given twice")
        query[key] = value.strip()
    return query


def _starttls_required(value: str | None, implicit_tls: bool) -> bool:
    if value is None:
        return False
    if implicit_tls:
        raise ValueError("SMTP_URL: starttls applies to smtp:// only (smtps:// is always encrypted)")
    if value not in ("auto", "required"):
        raise ValueError("SMTP_URL: starttls must be 'auto' or 'required'")
    return value == "required"


def _tls_context(verify: str | None, cafile: str | None) -> ssl.SSLContext:
    if verify is not None and verify.lower() not in _TRUE | _FALSE:
        raise ValueError("SMTP_URL: verify must be true or false")
    if verify is not None and verify.lower() in _FALSE:
        if cafile:
            raise ValueError("SMTP_URL: cafile and verify=false contradict each other")
        log.warning("SMTP TLS certificate verification is disabled (SMTP_URL verify=false): development only")
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if not cafile:
        return _system_context()
    try:
        return ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError):
        raise ValueError(f"SMTP_URL: cafile {cafile!r} is not a readable PEM file") from None


@functools.cache
def _system_context() -> ssl.SSLContext:
    """Verifying against the system CA store; loading it takes ~50 ms, and a context is safe to share."""
    return ssl.create_default_context()


def _address(value: str, what: str) -> Address:
    """Exactly one valid address (`addr` or `Name <addr>`); ValueError naming `what`, never echoing the value."""
    problem = f"{what}: must be one email address"
    if "\r" in value or "\n" in value:
        raise ValueError(f"{what}: must not contain line breaks")
    try:
        header = _POLICY.header_factory("to", value)
    except (IndexError, ValueError, HeaderParseError):
        raise ValueError(problem) from None
    addresses: tuple[Address, ...] = getattr(header, "addresses", ())
    defects = [d for d in header.defects if not isinstance(d, NonASCIILocalPartDefect)]  # SMTPUTF8 is fine
    if defects or len(addresses) != 1 or not addresses[0].username or not addresses[0].domain:
        raise ValueError(problem)
    return addresses[0]


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
