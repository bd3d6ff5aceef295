"""Failed webhooks are retried on a schedule with the same id and body; duplicates can be sent at once."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from devshop.testing import DevShopControl, DevShopServer
from devshop.webhooks import DEFAULT_RETRY_SCHEDULE, DEFAULT_TIMEOUT

from .conftest import ALL_SCOPES, SHOP, Admin, Received, WebhookSink

SECRET = "retry-test-secret-0123456789abcdef"
SCHEDULE = [0.05, 0.1]
PRODUCT = "gid://shopify/Product/8100000000001"
RENAME = ('mutation($p: ProductUpdateInput) { productUpdate(product: $p) { userErrors { message } } }')


def config(app_url: str, tmp_path: Path, **extra: object) -> dict[str, object]:
    return {"API_SECRET": SECRET, "APP_URL": app_url, "APP_TOML": str(tmp_path / "absent.toml"),
            "SHOPS": {SHOP: {"products": 5}}, "WEBHOOK_RETRY_SCHEDULE": SCHEDULE, "WEBHOOK_TIMEOUT": 1.0,
            **extra}


@pytest.fixture
def served(sink: WebhookSink, tmp_path: Path) -> Iterator[tuple[DevShopServer, DevShopControl, Admin]]:
    with DevShopServer(config(sink.url, tmp_path, WEBHOOK_TIMEOUT=0.5)) as server:
        control = DevShopControl(server.url)
        admin = Admin(server.admin_base_url, SHOP, control.issue_token(SHOP, scope=ALL_SCOPES)["access_token"])
        yield server, control, admin
        admin.session.close()


def signed(body: bytes, header: str) -> bool:
    digest = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(digest, header)


def rename(admin: Admin, title: str) -> None:
    assert admin.data(RENAME, {"p": {"id": PRODUCT, "title": title}})["productUpdate"]["userErrors"] == []


def test_the_default_policy_is_shopifys_8_retries_over_4_hours() -> None:
    assert len(DEFAULT_RETRY_SCHEDULE) == 8 and sum(DEFAULT_RETRY_SCHEDULE) == 4 * 3600
    assert all(b > a for a, b in zip(DEFAULT_RETRY_SCHEDULE, DEFAULT_RETRY_SCHEDULE[1:], strict=False)), "backs off"
    assert DEFAULT_TIMEOUT == 5.0


def test_failed_deliveries_are_retried_with_the_same_id_and_original_body(
        served: tuple[DevShopServer, DevShopControl, Admin], sink: WebhookSink) -> None:
    _, control, admin = served
    sink.script = [(500, 0.0), (401, 0.0)]  # two failures (whichever delivery gets them), then 200s
    rename(admin, "First title")
    rename(admin, "Second title")  # the product changes again: a retry of the first must not pick that up
    got = sink.take(4)
    time.sleep(sum(SCHEDULE))
    assert sink.received.empty(), "nothing more once both were acknowledged"
    by_id: dict[str, list[Received]] = {}
    for received in got:
        by_id.setdefault(received.headers["X-Shopify-Webhook-Id"], []).append(received)
    assert len(by_id) == 2
    titles = set()
    for webhook_id, attempts in by_id.items():
        assert {r.body for r in attempts} == {attempts[0].body}, "every retry carries the original payload"
        titles.add(json.loads(attempts[0].body)["title"])
        for header in ("X-Shopify-Triggered-At", "X-Shopify-Event-Id", "X-Shopify-Hmac-Sha256"):
            assert {r.headers[header] for r in attempts} == {attempts[0].headers[header]}, header
        assert all(signed(r.body, r.headers["X-Shopify-Hmac-Sha256"]) for r in attempts)
        gaps = [b.at - a.at for a, b in zip(attempts, attempts[1:], strict=False)]
        assert all(gap >= SCHEDULE[i] * 0.8 for i, gap in enumerate(gaps)), gaps

        log = control.wait_for_deliveries(SHOP, "products/update", count=len(attempts), webhook_id=webhook_id)
        assert [d["attempt"] for d in log] == list(range(1, len(attempts) + 1))
        assert [d["ok"] for d in log] == [False] * (len(log) - 1) + [True]
        assert [d["retry_in"] for d in log] == [*SCHEDULE[: len(log) - 1], None]
    assert titles == {"First title", "Second title"}
    statuses = [d["status"] for d in control.webhook_deliveries(SHOP, "products/update")]
    assert sorted(statuses) == [200, 200, 401, 500]


def test_retries_stop_after_the_schedule_and_timeouts_count_as_failures(
        served: tuple[DevShopServer, DevShopControl, Admin], sink: WebhookSink) -> None:
    _, control, admin = served
    sink.status = 503
    sink.script = [(200, 1.0)]  # answers 200 too late: the 0.5 s timeout makes it a failure
    rename(admin, "Never acknowledged")
    log = control.wait_for_deliveries(SHOP, "products/update", count=1 + len(SCHEDULE))
    assert [d["attempt"] for d in log] == [1, 2, 3]
    assert log[0]["status"] is None and "Timeout" in log[0]["error"]
    assert [d["status"] for d in log[1:]] == [503, 503]
    assert log[-1]["retry_in"] is None, "the last attempt schedules nothing"
    time.sleep(sum(SCHEDULE) + 0.3)
    assert len(control.webhook_deliveries(SHOP, "products/update")) == 3, "no attempt beyond the schedule"
    assert sink.received.qsize() == 3


def test_connection_errors_are_retried(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]  # bound, never listening: connections are refused
        with DevShopServer(config(f"http://127.0.0.1:{closed_port}", tmp_path)) as server:
            control = DevShopControl(server.url)
            admin = Admin(server.admin_base_url, SHOP, control.issue_token(SHOP, scope=ALL_SCOPES)["access_token"])
            rename(admin, "Nobody listening")
            log = control.wait_for_deliveries(SHOP, "products/update", count=3)
            admin.session.close()
    assert [d["attempt"] for d in log] == [1, 2, 3]
    assert all(d["status"] is None and "ConnectionError" in d["error"] for d in log)
    assert len({d["webhook_id"] for d in log}) == 1


def test_control_sends_once_unless_asked_to_retry(served: tuple[DevShopServer, DevShopControl, Admin],
                                                  sink: WebhookSink) -> None:
    _, control, _ = served
    sink.status = 500
    once = control.send_webhook(SHOP, "shop/redact", {"shop_domain": SHOP})
    assert once["status"] == 500 and once["statuses"] == [500]
    sink.next()
    time.sleep(sum(SCHEDULE) + 0.2)
    assert sink.received.empty(), "a plain control send is one attempt"

    sink.script = [(500, 0.0)]
    sink.status = 200
    answer = control.send_webhook(SHOP, "shop/redact", {"shop_domain": SHOP}, retry=True)
    assert answer["status"] == 500 and answer["deliveries"][0]["retry_in"] == SCHEDULE[0]
    log = control.wait_for_deliveries(SHOP, "shop/redact", count=2, webhook_id=answer["webhook_id"])
    assert [(d["attempt"], d["status"]) for d in log] == [(1, 500), (2, 200)]
    assert [r.headers["X-Shopify-Webhook-Id"] for r in sink.take(2)] == [answer["webhook_id"]] * 2


def test_uninstall_is_retried_until_acknowledged(served: tuple[DevShopServer, DevShopControl, Admin],
                                                 sink: WebhookSink) -> None:
    _, control, _ = served
    sink.script = [(502, 0.0)]
    answer = control.uninstall(SHOP)
    assert answer["deliveries"][0]["status"] == 502
    log = control.wait_for_deliveries(SHOP, "app/uninstalled", count=2)
    assert [d["status"] for d in log] == [502, 200]


def test_two_copies_at_the_same_instant_share_one_webhook_id(served: tuple[DevShopServer, DevShopControl, Admin],
                                                            sink: WebhookSink) -> None:
    _, control, _ = served
    sink.script = [(200, 0.3), (200, 0.3)]  # both held: if they were sent one after the other, 0.3 s apart
    started = time.monotonic()
    answer = control.send_webhook(SHOP, "products/update", {"id": 1, "title": "Twice"}, copies=2, concurrent=True)
    took = time.monotonic() - started
    assert answer["statuses"] == [200, 200]
    first, second = sink.take(2)
    assert first.headers["X-Shopify-Webhook-Id"] == second.headers["X-Shopify-Webhook-Id"] == answer["webhook_id"]
    assert first.body == second.body and first.headers["X-Shopify-Hmac-Sha256"] == second.headers[
        "X-Shopify-Hmac-Sha256"]
    assert abs(first.at - second.at) < 0.2, "sent together"
    assert took < 0.55, f"the copies were not concurrent ({took:.2f} s)"
    log = control.webhook_deliveries(SHOP, webhook_id=answer["webhook_id"])
    assert sorted(d["copy"] for d in log) == [1, 2] and {d["attempt"] for d in log} == {1}

    sequential = control.send_webhook(SHOP, "products/update", {"id": 1}, copies=3)
    assert sequential["statuses"] == [200, 200, 200]
    assert len({r.headers["X-Shopify-Webhook-Id"] for r in sink.take(3)}) == 1


def test_bad_copies_are_refused(served: tuple[DevShopServer, DevShopControl, Admin]) -> None:
    server, _, _ = served
    for copies in (0, 11, "2", True):
        answer = requests.post(f"{server.url}/_devshop/shops/{SHOP}/webhooks",
                               json={"topic": "shop/redact", "copies": copies}, timeout=10)
        assert answer.status_code == 400, copies


def test_stopping_the_server_cancels_pending_retries(sink: WebhookSink, tmp_path: Path) -> None:
    sink.status = 500
    with DevShopServer(config(sink.url, tmp_path, WEBHOOK_RETRY_SCHEDULE=[0.3])) as server:
        control = DevShopControl(server.url)
        control.send_webhook(SHOP, "shop/redact", {"shop_domain": SHOP}, retry=True)
        sink.next()
    time.sleep(0.5)
    assert sink.received.empty(), "no retry after the server stopped"
