"""The privacy promises (docs/data-handling.md §1-3, §8, §10) as checks that pass on the code as it is and fail
under in-process mutations that break them.

Each mutation is a `monkeypatch` of what the code really calls (never an edit of a source file); the app, devshop,
the devmodel, the SMTP mailbox and the RQ jobs all run in this process, so the patch reaches every one of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import request

from core import keys
from devmodel.testing import DevModelServer
from devtools.mailbox import MailboxServer
from tests.functional import test_chat
from tests.promises import privacy_checks as checks
from tests.promises.checks import Lumi

MERCHANT_EMAIL = "support@demo-merchant.example"
SEVEN_DAYS = 604_800  # seconds

# The chat suite's mailbox (a real SMTP server) and devmodel (the OpenAI-compatible stand-in) fixtures.
mailbox, devmodel = test_chat.mailbox, test_chat.devmodel


@pytest.fixture
def env(env: dict[str, str], mailbox: MailboxServer, request: pytest.FixtureRequest) -> dict[str, str]:
    """The stack's environment with the mailbox as SMTP server and, for a test that asks for the devmodel, the
    model through the real openai SDK (otherwise the rule responder answers)."""
    extra = {"SMTP_URL": mailbox.url}
    if "devmodel" in request.fixturenames:
        model: DevModelServer = request.getfixturevalue("devmodel")
        extra |= {"OPENAI_API_KEY": model.api_key, "OPENAI_BASE_URL": model.base_url,
                  "OPENAI_MODEL": "devmodel-test", "OPENAI_TIMEOUT": "5"}
    return {**env, **extra}


@pytest.fixture
def lumi(make_lumi: Callable[..., Lumi]) -> Lumi:
    """The demo shop installed in an in-process Lumi (tests/promises/conftest.py), with the merchant's email."""
    built = make_lumi()
    response = built.api("PATCH", "/api/settings", json={"escalation_email": MERCHANT_EMAIL})
    assert response.status_code == 200, response.text
    return built


def _breaks(check: Callable[..., None], *args: Any) -> None:
    with pytest.raises(AssertionError):
        check(*args)


# --- 1. personal data typed in the chat is redacted before storage and before the model --------------------------


def test_chat_redaction_check_passes(lumi: Lumi, devmodel: DevModelServer) -> None:
    checks.check_chat_message_is_redacted_in_redis_and_for_the_model(lumi, devmodel)


def test_mutation_email_redaction_disabled_is_caught(lumi: Lumi, devmodel: DevModelServer,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("chat.redaction._EMAIL_RE", re.compile(r"(?!)"))  # matches nothing
    _breaks(checks.check_chat_message_is_redacted_in_redis_and_for_the_model, lumi, devmodel)


def test_mutation_name_redaction_disabled_is_caught(lumi: Lumi, devmodel: DevModelServer,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("chat.redaction._redact_names", lambda text, names=(): text)
    _breaks(checks.check_chat_message_is_redacted_in_redis_and_for_the_model, lumi, devmodel)


# --- 2. the escalation reply-to --------------------------------------------------------------------------------------


def test_escalation_reply_to_check_passes(lumi: Lumi, mailbox: MailboxServer) -> None:
    checks.check_escalation_reply_to_is_only_in_its_sealed_key_for_at_most_an_hour(lumi, mailbox)


def test_mutation_reply_to_address_as_the_job_argument_is_caught(lumi: Lumi, mailbox: MailboxServer,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # The job is handed the address itself instead of a reference to its sealed key.
    monkeypatch.setattr("jobs.escalation.store_reply_to", lambda ctx, shop, reply_to, session_expires_at=None: reply_to)
    _breaks(checks.check_escalation_reply_to_is_only_in_its_sealed_key_for_at_most_an_hour, lumi, mailbox)


def test_mutation_sealed_reply_to_in_the_job_arguments_is_caught(lumi: Lumi, mailbox: MailboxServer,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # The earlier design: the address encrypted inside the RQ job, where the failed-job registry keeps it 7 days.
    monkeypatch.setattr("jobs.escalation.store_reply_to",
                        lambda ctx, shop, reply_to, session_expires_at=None: ctx.box.encrypt(reply_to))
    _breaks(checks.check_escalation_reply_to_is_only_in_its_sealed_key_for_at_most_an_hour, lumi, mailbox)


def test_mutation_reply_to_kept_seven_days_is_caught(lumi: Lumi, mailbox: MailboxServer,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keys, "ESCALATION_REPLY_TO_TTL", SEVEN_DAYS)
    _breaks(checks.check_escalation_reply_to_is_only_in_its_sealed_key_for_at_most_an_hour, lumi, mailbox)


# --- 3. the email typed to verify an order is used and dropped ---------------------------------------------------


def test_verification_email_check_passes(lumi: Lumi) -> None:
    checks.check_verification_email_is_used_and_dropped(lumi)


def test_mutation_verification_email_kept_in_the_session_is_caught(lumi: Lumi,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import web.chat

    real_lookup = web.chat.order_lookup

    def lookup_that_keeps_the_email(services: Any, shop: str) -> Any:
        lookup = real_lookup(services, shop)
        verify = lookup.verify

        def keeping(name: str, email: str) -> Any:
            session_id = (request.view_args or {})["session_id"]
            services.redis.hset(keys.chat_session(shop, session_id), "verify_email", email)
            return verify(name, email)

        lookup.verify = keeping  # type: ignore[method-assign]
        return lookup

    monkeypatch.setattr(web.chat, "order_lookup", lookup_that_keeps_the_email)
    _breaks(checks.check_verification_email_is_used_and_dropped, lumi)


# --- 4. customers/redact finds logged-in chats through the subject index ----------------------------------------


def test_customer_redact_check_passes(lumi: Lumi) -> None:
    checks.check_customer_redact_deletes_every_logged_in_chat_of_the_customer(lumi)


def test_mutation_logged_in_session_not_indexed_at_creation_is_caught(lumi: Lumi,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from chat.store import ChatStore

    real_create = ChatStore.create

    def create_without_index(self: ChatStore, *args: Any, **kwargs: Any) -> Any:
        self._index_in = lambda *a, **k: None  # type: ignore[method-assign]  # for this call only
        try:
            return real_create(self, *args, **kwargs)
        finally:
            del self._index_in

    monkeypatch.setattr(ChatStore, "create", create_without_index)
    _breaks(checks.check_customer_redact_deletes_every_logged_in_chat_of_the_customer, lumi)


def test_mutation_redact_job_ignoring_the_customer_index_is_caught(lumi: Lumi,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import jobs.compliance

    real_digests = jobs.compliance._digests

    def orders_only(ctx: Any, shop: str, customer_digest: Any, order_digests: Any, *raw: Any) -> list[str]:
        return real_digests(ctx, shop, None, order_digests, *raw)  # sessions found by their orders alone

    monkeypatch.setattr(jobs.compliance, "_digests", orders_only)
    _breaks(checks.check_customer_redact_deletes_every_logged_in_chat_of_the_customer, lumi)


# --- 5. the subject index holds no raw customer or order id ------------------------------------------------------


def test_subject_index_check_passes(lumi: Lumi) -> None:
    checks.check_subject_index_names_no_raw_customer_or_order_id(lumi)


def test_mutation_subject_index_by_raw_id_is_caught(lumi: Lumi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("chat.store.subject_digest",
                        lambda secret, shop, kind, raw_id: f"{kind}-{str(raw_id).rsplit('/', 1)[-1]}")
    _breaks(checks.check_subject_index_names_no_raw_customer_or_order_id, lumi)


# --- 6. read-only Shopify access ---------------------------------------------------------------------------------


def test_admin_read_only_check_passes() -> None:
    checks.check_admin_client_refuses_writes_before_any_request()


def test_mutation_read_only_guard_disabled_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shopify.admin._check_read_only", lambda query: None)
    _breaks(checks.check_admin_client_refuses_writes_before_any_request)


def test_mutation_guard_reading_only_the_first_operation_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    import shopify.admin

    real_types = shopify.admin.operation_types
    monkeypatch.setattr(shopify.admin, "operation_types", lambda document: real_types(document)[:1])
    _breaks(checks.check_admin_client_refuses_writes_before_any_request)


# --- 7. the edge access log ----------------------------------------------------------------------------------------


def _edit_template(monkeypatch: pytest.MonkeyPatch, old: str, new: str) -> None:
    """Serve the edge template's text with `old` replaced by `new` to whoever reads it (the file is untouched)."""
    from devtools.edge import TEMPLATE_PATH

    real_read = Path.read_text

    def read_text(self: Path, *args: Any, **kwargs: Any) -> str:
        text = real_read(self, *args, **kwargs)
        if self == TEMPLATE_PATH:
            assert old in text, f"the mutation no longer applies: {old!r} is not in the template"
            return text.replace(old, new, 1)
        return text

    monkeypatch.setattr(Path, "read_text", read_text)


def test_edge_access_log_check_passes(tmp_path: Path) -> None:
    checks.check_edge_access_log_has_no_client_address_and_no_query_string(tmp_path)


def test_mutation_client_address_in_the_edge_log_format_is_caught(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    _edit_template(monkeypatch, "log_format edge '[$time_local]", "log_format edge '$remote_addr [$time_local]")
    _breaks(checks.check_edge_access_log_has_no_client_address_and_no_query_string, tmp_path)


def test_mutation_query_string_in_the_edge_log_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The raw URI instead of the path cut at "?": the app proxy's logged_in_customer_id would be logged.
    _edit_template(monkeypatch, "$request_method $edge_log_path", "$request_method $request_uri")
    _breaks(checks.check_edge_access_log_has_no_client_address_and_no_query_string, tmp_path)


def test_mutation_edge_logging_in_nginx_default_format_is_caught(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # nginx's default `combined` format logs $remote_addr and $request.
    _edit_template(monkeypatch, "access_log {{access_log}};",
                   "access_log {{access_log}};\n    access_log logs/all.log;")
    _breaks(checks.check_edge_access_log_has_no_client_address_and_no_query_string, tmp_path)


# --- 8. compliance job arguments carry only digests ----------------------------------------------------------------


def test_compliance_job_arguments_check_passes(lumi: Lumi) -> None:
    checks.check_compliance_jobs_are_given_only_digests(lumi)


def test_mutation_raw_customer_id_in_the_job_arguments_is_caught(lumi: Lumi,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import web.webhooks

    real = web.webhooks.job_arguments

    def with_raw_id(topic: str, payload: dict[str, Any], shop: str = "", app_secret: str = "") -> dict[str, Any]:
        found = real(topic, payload, shop, app_secret)
        if topic.startswith("customers/"):
            found["customer_id"] = payload["customer"]["id"]
        return found

    monkeypatch.setattr(web.webhooks, "job_arguments", with_raw_id)
    _breaks(checks.check_compliance_jobs_are_given_only_digests, lumi)


def test_mutation_payload_customer_in_the_job_arguments_is_caught(lumi: Lumi,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import web.webhooks

    real = web.webhooks.job_arguments

    def with_contact(topic: str, payload: dict[str, Any], shop: str = "", app_secret: str = "") -> dict[str, Any]:
        found = real(topic, payload, shop, app_secret)
        if topic.startswith("customers/"):
            found["customer"] = payload["customer"]  # id, email and phone, "to log who asked"
        return found

    monkeypatch.setattr(web.webhooks, "job_arguments", with_contact)
    _breaks(checks.check_compliance_jobs_are_given_only_digests, lumi)
