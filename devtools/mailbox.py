"""A real SMTP server (aiosmtpd, in a thread) that keeps what it receives: the mail stand-in for tests and `make dev`.

    with MailboxServer(starttls=True, user="lumi", password="secret") as box:
        mailer = Mailer(box.url, "Lumi <no-reply@localhost>")
        mailer.send(...)
        [message] = box.wait_for(1)

`python -m devtools.mailbox --port 1025` runs one in the foreground and prints every mail it receives.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import ipaddress
import logging
import shutil
import socket
import ssl
import sys
import tempfile
import threading
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path
from types import TracebackType
from typing import Any, cast
from urllib.parse import quote, urlencode

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from devtools.shutdown import hold_stop_signals, wait_for_stop_signal

HOST = "127.0.0.1"
SERVER_NAME = "mailbox.localhost"  # our EHLO name; aiosmtpd's default (socket.getfqdn) can be a slow DNS lookup
DEFAULT_CLI_PORT = 1025
READY_TIMEOUT = 5.0


class ReceivedMessage(EmailMessage):
    """A received message, parsed, plus what the SMTP session knew about it."""

    mail_from: str = ""
    rcpt_tos: tuple[str, ...] = ()
    tls: bool = False  # the message travelled over TLS (STARTTLS or implicit)
    auth_login: str | None = None  # the AUTH user, if the client authenticated

    @property
    def text(self) -> str:
        """The text/plain body, decoded, with `\n` line ends (on the wire they are CRLF)."""
        body = self.get_body(preferencelist=("plain",))
        return "" if body is None else str(body.get_content()).replace("\r\n", "\n")


_PARSER = BytesParser(_class=ReceivedMessage, policy=default_policy)


class MailboxServer:
    """An SMTP server on 127.0.0.1 (a free port unless `port` is given) that collects messages in memory.

    starttls: offer STARTTLS with a self-signed certificate (trust it with `.cafile`, already in `.url`).
    implicit_tls: speak TLS from the first byte (smtps://); same certificate.
    user/password: offer AUTH LOGIN/PLAIN and refuse MAIL FROM until the client authenticated.
    on_message: called (in the server thread) with every message accepted.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        starttls: bool = False,
        implicit_tls: bool = False,
        user: str | None = None,
        password: str | None = None,
        on_message: Callable[[ReceivedMessage], None] | None = None,
    ) -> None:
        if starttls and implicit_tls:
            raise ValueError("choose starttls or implicit_tls, not both")
        if (user is None) != (password is None):
            raise ValueError("give both user and password, or neither")
        self.requested_port = port
        self.starttls = starttls
        self.implicit_tls = implicit_tls
        self.user = user
        self.password = password
        self.on_message = on_message
        self.port = 0
        self.cafile: str | None = None
        self._tmpdir: Path | None = None
        self._controller: _BoundController | None = None
        self._received: list[ReceivedMessage] = []
        self._changed = threading.Condition()
        self._faults_left = 0
        self._fault_reply = ""

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> MailboxServer:
        if self._controller is not None:
            raise RuntimeError("MailboxServer already started")
        # Bind first and hand the socket over: no window in which another process takes a "free" port.
        # proto=IPPROTO_TCP, as asyncio would pick: only then does it set TCP_NODELAY on accepted connections
        # (without it, Nagle + delayed ACK cost 40 ms per multi-line reply).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((HOST, self.requested_port))
            self.port = int(sock.getsockname()[1])
            tls_context = self._make_tls_context() if self.starttls or self.implicit_tls else None
            smtp_options: dict[str, Any] = {}
            if tls_context is not None and self.starttls:
                smtp_options["tls_context"] = tls_context
            if self.user is not None:
                smtp_options["authenticator"] = self._authenticate
                # aiosmtpd only counts STARTTLS as TLS; allow AUTH in the clear (tests) and over implicit TLS.
                smtp_options["auth_require_tls"] = self.starttls
            self._controller = _BoundController(
                _Handler(self),
                sock,
                ssl_context=tls_context if self.implicit_tls else None,
                server_hostname=SERVER_NAME,
                ready_timeout=READY_TIMEOUT,
                **smtp_options,
            )
            self._controller.start()
        except BaseException:
            self.stop()
            sock.close()  # asyncio owns it once serving; closing twice is harmless
            raise
        return self

    def stop(self) -> None:
        """Stop serving and delete the certificate (idempotent)."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop(no_assert=True)
            if not controller.loop.is_closed():  # start failed before the loop ran
                controller.loop.close()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
            self.cafile = None

    def __enter__(self) -> MailboxServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- what tests use ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The SMTP_URL that makes chat.mailer.Mailer talk to this server (credentials and CA included)."""
        if not self.port:
            raise RuntimeError("MailboxServer is not started")
        scheme = "smtps" if self.implicit_tls else "smtp"
        userinfo = f"{quote(self.user, safe='')}:{quote(self.password or '', safe='')}@" if self.user else ""
        query: dict[str, str] = {}
        if self.starttls:
            query["starttls"] = "required"
        if self.cafile:
            query["cafile"] = self.cafile
        return f"{scheme}://{userinfo}{HOST}:{self.port}" + (f"?{urlencode(query)}" if query else "")

    @property
    def messages(self) -> list[ReceivedMessage]:
        """A snapshot of every message accepted so far, oldest first."""
        with self._changed:
            return list(self._received)

    def wait_for(self, count: int = 1, timeout: float = 5.0) -> list[ReceivedMessage]:
        """Block until at least `count` messages arrived; return them all. TimeoutError otherwise."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._received) >= count, timeout):
                raise TimeoutError(f"expected {count} message(s) within {timeout}s, got {len(self._received)}")
            return list(self._received)

    def clear(self) -> None:
        """Forget received messages and pending faults."""
        with self._changed:
            self._received.clear()
            self._faults_left = 0

    def fail_next(self, n: int = 1, code: int = 451) -> None:
        """Answer the next `n` DATA commands with `code` (4xx: try again later, 5xx: rejected) and drop them."""
        if not 400 <= code <= 599 or n < 0:
            raise ValueError("fail_next needs n >= 0 and a 4xx or 5xx code")
        text = "4.3.0 Try again later" if code < 500 else "5.7.1 Message rejected"
        with self._changed:
            self._faults_left = n
            self._fault_reply = f"{code} {text} (injected fault)"

    # -- server side (runs in the aiosmtpd thread) ---------------------------------------------

    def _accept(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self._changed:
            if self._faults_left:
                self._faults_left -= 1
                return self._fault_reply
        message = cast(ReceivedMessage, _PARSER.parsebytes(envelope.original_content or b""))
        message.mail_from = envelope.mail_from or ""
        message.rcpt_tos = tuple(envelope.rcpt_tos)
        message.tls = server.transport is not None and server.transport.get_extra_info("ssl_object") is not None
        auth = session.auth_data
        message.auth_login = auth.login.decode("utf-8", "replace") if isinstance(auth, LoginPassword) else None
        with self._changed:
            self._received.append(message)
            self._changed.notify_all()
        if self.on_message is not None:
            self.on_message(message)
        return "250 2.0.0 OK: queued"

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and hmac.compare_digest(auth_data.login, (self.user or "").encode())
            and hmac.compare_digest(auth_data.password, (self.password or "").encode())
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    def _make_tls_context(self) -> ssl.SSLContext:
        self._tmpdir = Path(tempfile.mkdtemp(prefix="lumi-mailbox-"))
        certfile, keyfile = _self_signed_certificate(self._tmpdir)
        self.cafile = str(certfile)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certfile, keyfile)
        return context


class _Handler:
    """aiosmtpd hooks (a separate object: aiosmtpd inspects every attribute of its handler)."""

    def __init__(self, box: MailboxServer) -> None:
        self.box = box

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        if self.box.user is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return self.box._accept(server, session, envelope)


class _BoundController(Controller):
    """aiosmtpd's Controller serving on a socket we bound ourselves (its own code binds host:port later)."""

    def __init__(self, handler: _Handler, sock: socket.socket, **kwargs: Any) -> None:
        self._sock = sock
        super().__init__(handler, hostname=HOST, port=int(sock.getsockname()[1]), **kwargs)

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        return self.loop.create_server(self._factory_invoker, sock=self._sock, ssl=self.ssl_context)


def _self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A one-day certificate for localhost and 127.0.0.1 that is its own CA: (cert.pem, key.pem)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Lumi test mailbox")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = directory / "cert.pem", directory / "key.pem"
    certfile.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    keyfile.chmod(0o600)
    return certfile, keyfile


# -- python -m devtools.mailbox ---------------------------------------------------------------


def _print_message(message: ReceivedMessage) -> None:
    print(
        f"--- mail from {message.mail_from} to {', '.join(message.rcpt_tos)}\n"
        f"Subject: {message['Subject']}\n\n{message.text.rstrip()}\n---",
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.mailbox", description="Run a local SMTP server that prints every mail it receives."
    )
    parser.add_argument("--port", type=int, default=DEFAULT_CLI_PORT, help=f"port on {HOST} (default %(default)s)")
    tls = parser.add_mutually_exclusive_group()
    tls.add_argument("--starttls", action="store_true", help="offer STARTTLS with a throw-away certificate")
    tls.add_argument("--tls", action="store_true", help="implicit TLS (smtps://)")
    parser.add_argument("--user", help="require AUTH with this user (needs --password)")
    parser.add_argument("--password", help="the AUTH password")
    args = parser.parse_args(argv)
    if (args.user is None) != (args.password is None):
        parser.error("--user and --password go together")
    # aiosmtpd logs every connection and a deprecation notice per AUTH; the mails are what matter here.
    logging.getLogger("mail.log").setLevel(logging.ERROR)

    hold_stop_signals()  # before the server thread starts: it inherits the mask (see devtools.shutdown)
    box = MailboxServer(
        port=args.port, starttls=args.starttls, implicit_tls=args.tls, user=args.user, password=args.password,
        on_message=_print_message,
    )  # fmt: skip
    try:
        box.start()
    except OSError as err:
        print(f"mailbox: cannot listen on {HOST}:{args.port}: {err.strerror or err}", file=sys.stderr)
        return 1
    try:
        print(f"mailbox: listening, SMTP_URL={box.url}", flush=True)
        wait_for_stop_signal()
    finally:
        box.stop()
    print("mailbox: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
