"""chat.mailer against a real SMTP server (devtools.mailbox): TLS modes, AUTH, fault classification, no leaks."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from dataclasses import replace
from email.utils import parsedate_to_datetime
from typing import Any

import pytest

from chat.mailer import Email, Mailer, MailError, NullMailer, build_mailer, default_sender
from devtools.mailbox import MailboxServer

SENDER = "Lumi <no-reply@lumi.example>"
USER = "lumi@relay"
PASSWORD = "s3cr:t/p@ss%word"  # every character that needs URL-encoding
TEXT = "Bonjour, votre commande est arrivée. 日本からの注文です。\nLine two."


ESCALATION = Email(to="Merchant <merchant@shop.example>", subject="Escalation: café 日本", text=TEXT)


def an_email(**changes: Any) -> Email:
    return replace(ESCALATION, **changes)


@pytest.fixture
def plain() -> Iterator[MailboxServer]:
    with MailboxServer() as box:
        yield box


@pytest.fixture
def starttls() -> Iterator[MailboxServer]:
    with MailboxServer(starttls=True) as box:
        yield box


@pytest.fixture
def authed() -> Iterator[MailboxServer]:
    with MailboxServer(starttls=True, user=USER, password=PASSWORD) as box:
        yield box


def test_plain_send_arrives_with_headers_and_utf8_body(plain: MailboxServer) -> None:
    message_id = Mailer(plain.url, SENDER).send(
        an_email(reply_to="shopper@buyer.example", headers={"X-Lumi-Conversation": "c-42"})
    )

    [got] = plain.wait_for(1)
    assert got.mail_from == "no-reply@lumi.example"
    assert got.rcpt_tos == ("merchant@shop.example",)
    assert got["From"] == SENDER
    assert got["To"] == "Merchant <merchant@shop.example>"
    assert got["Reply-To"] == "shopper@buyer.example"
    assert got["Subject"] == "Escalation: café 日本"
    assert got["Message-ID"] == message_id
    assert message_id.startswith("<") and message_id.endswith("@lumi.example>")
    assert got["Auto-Submitted"] == "auto-generated"
    assert got["X-Lumi-Conversation"] == "c-42"
    assert parsedate_to_datetime(got["Date"]).tzinfo is not None
    assert got.get_content_type() == "text/plain" and got.get_content_charset() == "utf-8"
    assert got.text == TEXT + "\n"
    assert not got.tls and got.auth_login is None


def test_starttls_with_the_test_ca_arrives_encrypted(starttls: MailboxServer) -> None:
    assert "starttls=required" in starttls.url and starttls.cafile
    Mailer(starttls.url, SENDER).send(an_email())
    [got] = starttls.wait_for(1)
    assert got.tls


def test_starttls_is_used_when_offered_even_if_not_required(starttls: MailboxServer) -> None:
    url = f"smtp://127.0.0.1:{starttls.port}?cafile={starttls.cafile}"
    Mailer(url, SENDER).send(an_email())
    assert starttls.wait_for(1)[0].tls


def test_untrusted_certificate_is_a_permanent_error(starttls: MailboxServer) -> None:
    with pytest.raises(MailError) as caught:
        Mailer(f"smtp://127.0.0.1:{starttls.port}", SENDER).send(an_email())  # system CA store only
    assert caught.value.transient is False
    assert "certificate" in str(caught.value)
    assert starttls.messages == []


def test_verify_false_skips_certificate_checks(starttls: MailboxServer) -> None:
    Mailer(f"smtp://127.0.0.1:{starttls.port}?verify=false", SENDER).send(an_email())
    assert starttls.wait_for(1)[0].tls


def test_starttls_required_but_not_offered_is_permanent(plain: MailboxServer) -> None:
    with pytest.raises(MailError) as caught:
        Mailer(f"{plain.url}?starttls=required", SENDER).send(an_email())
    assert caught.value.transient is False
    assert "STARTTLS" in str(caught.value)
    assert plain.messages == []


def test_implicit_tls_arrives() -> None:
    with MailboxServer(implicit_tls=True, user=USER, password=PASSWORD) as box:
        assert box.url.startswith("smtps://")
        Mailer(box.url, SENDER).send(an_email())
        [got] = box.wait_for(1)
    assert got.tls and got.auth_login == USER


def test_auth_with_the_right_url_encoded_credentials_works(authed: MailboxServer) -> None:
    Mailer(authed.url, SENDER).send(an_email())
    [got] = authed.wait_for(1)
    assert got.auth_login == USER and got.tls


def test_auth_over_plain_smtp_is_allowed_to_loopback_only() -> None:
    with MailboxServer(user=USER, password=PASSWORD) as box:
        Mailer(box.url, SENDER).send(an_email())
        assert box.wait_for(1)[0].auth_login == USER


def test_wrong_password_is_permanent_and_never_echoed(authed: MailboxServer) -> None:
    wrong = "Wr0ng-p4ss!"
    url = authed.url.replace("s3cr%3At%2Fp%40ss%25word", wrong)
    assert wrong in url
    with pytest.raises(MailError) as caught:
        Mailer(url, SENDER).send(an_email())
    error = caught.value
    assert error.transient is False and error.code == 535
    assert wrong not in str(error) and PASSWORD not in str(error)
    assert authed.messages == []


def test_missing_credentials_are_refused_permanently(authed: MailboxServer) -> None:
    url = authed.url.replace(authed.url.split("//")[1].split("@")[0] + "@", "")
    with pytest.raises(MailError) as caught:
        Mailer(url, SENDER).send(an_email())
    assert caught.value.transient is False and caught.value.code == 530


def test_4xx_is_transient_and_the_retry_succeeds(plain: MailboxServer) -> None:
    mailer = Mailer(plain.url, SENDER)
    plain.fail_next(1, 451)
    with pytest.raises(MailError) as caught:
        mailer.send(an_email())
    assert caught.value.transient is True and caught.value.code == 451
    assert plain.messages == []

    mailer.send(an_email())
    assert len(plain.wait_for(1)) == 1


def test_5xx_is_permanent(plain: MailboxServer) -> None:
    plain.fail_next(1, 550)
    with pytest.raises(MailError) as caught:
        Mailer(plain.url, SENDER).send(an_email())
    assert caught.value.transient is False and caught.value.code == 550
    assert "merchant@shop.example" not in str(caught.value)


def test_server_not_listening_is_transient() -> None:
    with socket.socket() as held:  # bound, never listening: connections are refused
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        with pytest.raises(MailError) as caught:
            Mailer(f"smtp://127.0.0.1:{port}", SENDER).send(an_email())
    assert caught.value.transient is True
    assert isinstance(caught.value.__cause__, OSError)


def test_silent_server_times_out_as_transient() -> None:
    with socket.socket() as silent:  # accepts connections (backlog) but never greets
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        with pytest.raises(MailError) as caught:
            Mailer(f"smtp://127.0.0.1:{port}", SENDER, timeout=0.2).send(an_email())
    assert caught.value.transient is True
    assert "timed out" in str(caught.value)


def test_null_mailer_refuses_permanently() -> None:
    mailer = build_mailer(None, SENDER)
    assert isinstance(mailer, NullMailer)
    with pytest.raises(MailError, match="no SMTP_URL configured") as caught:
        mailer.send(an_email())
    assert caught.value.transient is False


def test_from_parameter_and_default_sender(plain: MailboxServer) -> None:
    assert default_sender("https://lumi.example.com/app") == "Lumi <no-reply@lumi.example.com>"
    assert default_sender(None) == "Lumi <no-reply@localhost>"
    build_mailer(f"{plain.url}?from=Support%20%3Chelp%40lumi.example%3E", SENDER).send(an_email())
    [got] = plain.wait_for(1)
    assert got["From"] == "Support <help@lumi.example>" and got.mail_from == "help@lumi.example"


@pytest.mark.parametrize(
    ("url", "names"),
    [
        ("http://u:hunter2@mail.example", "smtp://"),
        ("smtp://u:hunter2@", "host"),
        ("smtp://u:hunter2@mail.example:99999", "port"),
        ("smtp://u:hunter2@mail.example:0", "port"),
        ("smtp://u:hunter2@mail.example:", "port"),
        ("smtp://u:hunter2@mail.example?tls=yes", "'tls'"),
        ("smtp://u:hunter2@mail.example?starttls=always", "starttls"),
        ("smtps://u:hunter2@mail.example?starttls=required", "starttls"),
        ("smtp://u:hunter2@mail.example?verify=maybe", "verify"),
        ("smtp://u:hunter2@mail.example?cafile=/nonexistent/ca.pem", "cafile"),
        ("smtp://u:hunter2@mail.example?from=not-an-address", "from"),
        ("smtp://:hunter2@mail.example", "user name"),
    ],
)
def test_bad_smtp_url_names_the_variable_and_hides_the_password(url: str, names: str) -> None:
    with pytest.raises(ValueError) as caught:
        Mailer.from_url(url, SENDER)
    message = str(caught.value)
    assert message.startswith("SMTP_URL") and names in message
    assert "hunter2" not in message and caught.value.__cause__ is None
    assert "hunter2" not in repr(caught.value)


def test_repr_hides_the_password() -> None:
    assert "hunter2" not in repr(Mailer("smtps://u:hunter2@mail.example", SENDER))


@pytest.mark.parametrize(
    "changes",
    [
        {"to": "a@example.com, b@example.com"},
        {"to": "not an address"},
        {"subject": "hi\r\nBcc: victim@example.com"},
        {"headers": {"Bcc": "victim@example.com"}},
        {"headers": {"X-Note": "a\nBcc: victim@example.com"}},
        {"headers": {"X Note: y\r\nBcc": "victim@example.com"}},
    ],
)
def test_malformed_email_is_a_value_error_and_nothing_is_sent(plain: MailboxServer, changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        Mailer(plain.url, SENDER).send(an_email(**changes))
    assert plain.messages == []


def test_logs_carry_the_outcome_but_no_recipient_or_body(
    plain: MailboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="chat.mailer")
    mailer = Mailer(plain.url, SENDER)
    message_id = mailer.send(an_email())
    plain.fail_next(1, 550)
    with pytest.raises(MailError):
        mailer.send(an_email())

    records = [r for r in caplog.records if r.name == "chat.mailer"]
    assert [r.getMessage() for r in records] == ["email sent", "email not sent"]
    assert records[0].message_id == message_id.strip("<>").split("@")[0]  # type: ignore[attr-defined]
    logged = " ".join(str(v) for r in records for v in r.__dict__.values())
    for secret in ("merchant@shop.example", "Merchant", "arrivée", "Escalation", "lumi.example"):
        assert secret not in logged
