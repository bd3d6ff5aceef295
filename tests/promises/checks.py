"""The data promises (DESIGN.md "The data promises", docs/data-handling.md §4-§7) as plain check functions.

Each `check_*` drives the real code path of one promise on a `Lumi` built by this package's `make_lumi` fixture and
asserts the policy's own numbers, written here as literals (never read back from the code's constants). A check
returns None when the promise holds and raises AssertionError when it does not: test_policy_values.py runs each one
on the code as it is, and the mutation tests run the same check on code broken in-process and expect it to fail.

To add a check: drive Lumi through `Lumi`'s helpers (HTTP routes, signed webhooks and the app proxy through devshop,
`run_jobs()` for the queued jobs), observe Redis and Meilisearch directly, and assert the policy's literals.
"""

from __future__ import annotations

import hashlib
import json
import signal
import time
from datetime import datetime
from typing import Any

import redis
import requests
from rq import SimpleWorker
from rq.job import Job

from core import keys
from feeds.index import PRODUCTS_INDEX
from jobs.queues import all_queues
from runtime.services import Services
from shopify import shop_settings
from tests.conftest import DEMO_SHOP, Stack
from tests.helpers import indexed, listed_products

DAY = 24 * 3600
# The policy's numbers (DESIGN.md, docs/data-handling.md).
JOB_RECORD_RETENTION_S = 7 * DAY  # "Index job records (completed and failed) expire after 7 days": 604800 s
PLAN_RETENTION_S = {"free": 7 * DAY, "growth": 30 * DAY, "pro": 90 * DAY}  # 604800, 2592000, 7776000 s
DEFAULT_PLAN = "free"
RECEIPT_RETENTION_S = 400 * DAY  # receipts and deletion request records: 34560000 s
# Seconds a key "just written" may already have lived when the check reads it.
JUST_WRITTEN_S = 120
# What a merchant may delete one at a time, and the stores the policy puts in each (docs/data-handling.md §7).
CATEGORY_STORES = {
    "products": {"product-index", "feed-cache", "index-jobs"},
    "settings": {"shop-settings"},
    "chat": {"chat"},
    "operational": {"webhook-log", "feed-freshness"},
}
# An RQ job in one of these states is a job record (completed or failed); a queued one is work still to do.
FINISHED = {"finished", "failed", "stopped", "canceled"}
SECRET_HEADER = "X-Lumi-Session-Secret"


# --- the driver --------------------------------------------------------------------------------------------------


class _InProcessWorker(SimpleWorker):
    """RQ's in-process worker, counting the jobs it runs."""

    executed = 0

    def execute_job(self, job: Job, queue: Any) -> Any:
        self.executed += 1
        return super().execute_job(job, queue)


class ChatVisit:
    """A shopper's chat through devshop's app proxy (signed as Shopify signs it)."""

    def __init__(self, lumi: Lumi) -> None:
        self.lumi = lumi
        response = lumi.http.post(self._url("sessions"), json={}, timeout=30)
        assert response.status_code == 201, response.text
        session = response.json()["session"]
        self.id: str = session["id"]
        self.secret: str = session["secret"]
        # The absolute expiry the shopper is told (whole seconds, UTC).
        self.expires_at = datetime.fromisoformat(session["expires_at"].replace("Z", "+00:00")).timestamp()

    def _url(self, path: str) -> str:
        return self.lumi.stack.control.proxy_url(self.lumi.shop, f"chat/{path}")

    def say(self, text: str) -> requests.Response:
        return self.lumi.http.post(self._url(f"sessions/{self.id}/messages"), json={"text": text},
                                   headers={SECRET_HEADER: self.secret}, timeout=30)

    def keys(self) -> set[str]:
        """Every Redis key that names this session."""
        return {k for k in self.lumi.redis.scan_iter(match=f"lumi:chat:{self.lumi.shop}:*", count=1000)
                if self.id in k}


class Lumi:
    """Lumi and devshop in this process (see conftest.py), and the few actions the checks take on them."""

    def __init__(self, stack: Stack, shop: str = DEMO_SHOP) -> None:
        self.stack = stack
        self.shop = shop
        self.http = stack.http

    @property
    def services(self) -> Services:
        return self.stack.services  # type: ignore[no-any-return]

    @property
    def redis(self) -> redis.Redis:
        """Lumi's Redis, decoded."""
        return self.services.redis

    @property
    def env(self) -> dict[str, str]:
        return self.stack.env

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """The embedded admin's JSON API, with a session token for the shop."""
        return self.stack.api(method, path, shop=self.shop, **kwargs)

    def run_jobs(self, max_jobs: int | None = None) -> int:
        """Run queued jobs in this process, as the worker process would (the same queues, most urgent first, and
        the worker's default result TTL), until the queues are empty or `max_jobs` ran. Returns how many ran;
        a failed job fails the check."""
        connection = self.services.queue_redis
        queues = all_queues(connection)
        failed_before = {job_id for q in queues for job_id in q.failed_job_registry.get_job_ids()}
        worker = _InProcessWorker(queues, connection=connection, default_result_ttl=keys.JOB_RECORD_TTL,
                                  worker_ttl=keys.WORKER_TTL, log_job_description=False)
        # RQ installs its own SIGINT/SIGTERM handlers for a worker's life; give pytest its own back.
        saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            worker.work(burst=True, max_jobs=max_jobs, logging_level="WARNING")
        finally:
            for sig, handler in saved.items():
                signal.signal(sig, handler)
        failed = [Job.fetch(job_id, connection=connection) for q in queues
                  for job_id in q.failed_job_registry.get_job_ids() if job_id not in failed_before]
        assert not failed, [(job.func_name, job.exc_info) for job in failed]
        return worker.executed

    def synced(self) -> None:
        """The shop's catalogue is indexed (its first sync has run)."""
        if self.redis.hget(keys.sync_record(self.shop), "status") != "completed":
            self.run_jobs()
        assert self.redis.hget(keys.sync_record(self.shop), "status") == "completed"

    def set_plan(self, plan: str) -> None:
        """The operator's `flask --app web lumi set-plan SHOP PLAN`."""
        result = self.stack.app.test_cli_runner().invoke(args=["lumi", "set-plan", self.shop, plan])
        assert result.exit_code == 0, result.output

    def webhook(self, topic: str, payload: dict[str, Any]) -> None:
        """A webhook delivered (and signed) by devshop, answered by Lumi."""
        sent = self.stack.control.send_webhook(self.shop, topic, payload)
        assert sent["status"] == 200, sent

    def open_chat(self) -> ChatVisit:
        return ChatVisit(self)

    def product_id(self) -> int:
        return min(listed_products(self.stack, self.shop))


# --- observing -------------------------------------------------------------------------------------------------


def sha256_of(names: set[str]) -> str:
    """The policy's receipt digest: SHA-256 (hex) of the sorted names, joined by newlines."""
    return hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()


def held_names(lumi: Lumi) -> set[str]:
    """What Lumi holds for the shop, as this check sees it (and names it as the receipts' digests do): Redis keys
    naming the shop, `<shop key>#settings` while the settings differ from the defaults, the shop's membership of the
    installed set, and its documents in the products index. Receipts and deletion records are left out: they are
    what a deletion keeps."""
    shop, client = lumi.shop, lumi.redis
    found = {k for k in client.scan_iter(count=1000) if shop in k.split(":")
             and not k.startswith((f"lumi:receipts:{shop}", f"lumi:deletion:{shop}:"))}
    raw = client.hget(f"lumi:shop:{shop}", "settings")
    if raw is not None and shop_settings.load(json.loads(raw)) != shop_settings.defaults():
        found.add(f"lumi:shop:{shop}#settings")
    if client.sismember("lumi:shops:installed", shop):
        found.add(f"lumi:shops:installed#{shop}")
    found |= {f"meilisearch:{PRODUCTS_INDEX}/{doc['uid']}" for doc in indexed(lumi.services.meili, shop).values()}
    return found


def inventory(lumi: Lumi) -> dict[str, dict[str, dict[str, int]]]:
    """The data inventory as the merchant's admin page shows it: category → store → {name: count}."""
    response = lumi.api("GET", "/api/data-inventory")
    assert response.status_code == 200, response.text
    return {category: {store: held["items"] for store, held in stores.items()}
            for category, stores in response.json()["inventory"].items()}


def fill(lumi: Lumi) -> ChatVisit:
    """Give the shop data in every category: its catalogue indexed and feeds cached (products), changed settings,
    a chat (chat), and a product webhook's delivery log and freshness timing (operational)."""
    lumi.synced()
    response = lumi.api("PATCH", "/api/settings", json={
        "escalation_email": "privacy@demo-merchant.example", "widget": {"primary_color": "#ab12cd"}})
    assert response.status_code == 200, response.text
    visit = lumi.open_chat()
    assert visit.say("hello, do you ship to Canada?").status_code == 200
    lumi.webhook("products/update", {"id": lumi.product_id(), "updated_at": "2030-01-01T00:00:00Z"})
    lumi.run_jobs()
    for feed in ("new-arrivals", "on-sale"):
        response = lumi.http.get(f"{lumi.stack.url}/proxy/feeds/{feed}", params={"shop": lumi.shop}, timeout=30)
        assert response.status_code == 200, response.text
    return visit


def request_deletion(lumi: Lumi, categories: list[str]) -> dict[str, Any]:
    """The merchant confirms a deletion request; its job runs; the request as the API then shows it."""
    response = lumi.api("POST", "/api/deletion-requests", json={"categories": categories, "confirm": True})
    assert response.status_code == 202, response.text
    request_id = response.json()["deletion_request"]["id"]
    lumi.run_jobs()
    response = lumi.api("GET", f"/api/deletion-requests/{request_id}")
    assert response.status_code == 200, response.text
    request = response.json()["deletion_request"]
    assert request["status"] == "done", request
    return request  # type: ignore[no-any-return]


# --- 1. job records expire after 7 days -------------------------------------------------------------------------


def check_job_records_expire_within_7_days(lumi: Lumi) -> None:
    """Index job records: every RQ job record (completed or failed) and result, the sync record, the index state
    and the pending and touched sets have 0 < TTL <= 604800 s, and >= 604800 - 120 s when just written. Checked
    after every job of a first sync during which a product webhook arrives (so the pending and touched sets exist)."""
    shop = lumi.shop
    raw = lumi.services.queue_redis  # bytes, as RQ reads its own keys
    records = {f"lumi:sync:{shop}", f"lumi:index:{shop}", f"lumi:index:pending:{shop}", f"lumi:index:touched:{shop}"}
    seen: set[str] = set()
    # The install queued the first sync; the webhook arrives before it runs.
    lumi.webhook("products/update", {"id": lumi.product_id(), "updated_at": "2030-01-01T00:00:00Z"})
    while True:
        ran = lumi.run_jobs(max_jobs=1)
        for key in (k.decode() for k in raw.scan_iter(count=1000)):
            ttl = raw.ttl(key)
            if key.startswith("rq:job:"):
                job_id = key.removeprefix("rq:job:")
                if ":" in job_id:  # RQ's bookkeeping beside a job (dependents), not a job record
                    continue
                if Job.fetch(job_id, connection=raw).get_status() not in FINISHED:
                    continue
                kind = "rq:job:"
            elif key.startswith("rq:results:"):
                kind = "rq:results:"
            elif key in records:
                kind = key
            elif key.startswith("lumi:index:"):  # other index bookkeeping (tombstones, arrival times)
                assert 0 < ttl <= JOB_RECORD_RETENTION_S, (key, ttl)
                continue
            else:
                continue
            seen.add(kind)
            assert JOB_RECORD_RETENTION_S - JUST_WRITTEN_S <= ttl <= JOB_RECORD_RETENTION_S, (key, ttl)
        if not ran:
            break
    assert seen == records | {"rq:job:", "rq:results:"}, sorted(seen)  # every kind of record was checked
    assert lumi.redis.hget(f"lumi:sync:{shop}", "status") == "completed"


# --- 2. chat expires after the plan's retention -------------------------------------------------------------------


def _no_retention_override(lumi: Lumi) -> None:
    for name in ("LUMI_CHAT_RETENTION_SECONDS", "LUMI_PLAN_RETENTION_DAYS", "LUMI_DEFAULT_PLAN"):
        assert name not in lumi.env, f"{name} would hide the plan table"
    assert lumi.services.settings.chat_retention_seconds == 0


def _assert_expires_after(lumi: Lumi, visit: ChatVisit, retention_s: int, opened: tuple[float, float]) -> None:
    """Every key of the session expires at its start + `retention_s` (rounded up to a whole second)."""
    found = visit.keys()
    assert {f"lumi:chat:{lumi.shop}:session:{visit.id}", f"lumi:chat:{lumi.shop}:transcript:{visit.id}"} <= found
    before, after = opened
    for key in found:
        expiry_ms = lumi.redis.pexpiretime(key)
        assert expiry_ms > 0, (key, expiry_ms)  # -1: kept forever
        assert (before + retention_s) * 1000 <= expiry_ms <= (after + retention_s + 1) * 1000, (key, expiry_ms)
        ttl_s = lumi.redis.pttl(key) / 1000
        assert retention_s - JUST_WRITTEN_S <= ttl_s <= retention_s + 1, (key, ttl_s)


def check_chat_retention_per_plan(lumi: Lumi) -> None:
    """Chat session data (metadata and transcript) expires after the plan's retention: free 7 days (the default
    plan), growth 30, pro 90. A session is opened through the signed app proxy and a message is posted; then every
    key of the session has its expiry at start + retention. No retention override is set."""
    _no_retention_override(lumi)
    plans: list[str | None] = [None, "free", "growth", "pro"]  # None: the default plan, never set
    for plan in plans:
        if plan is not None:
            lumi.set_plan(plan)
        retention_s = PLAN_RETENTION_S[plan or DEFAULT_PLAN]
        before = time.time()
        visit = lumi.open_chat()
        after = time.time()
        assert visit.say("hello, do you ship to Canada?").status_code == 200
        _assert_expires_after(lumi, visit, retention_s, (before, after))
        # The merchant is shown the same plan and retention.
        shown = lumi.api("GET", "/api/shop").json()["shop"]["plan"]
        assert shown["name"] == (plan or DEFAULT_PLAN) and shown["retention_days"] * DAY == retention_s, shown


def check_chat_expiry_is_absolute_and_nothing_brings_it_back(lumi: Lumi) -> None:
    """A session's keys keep the one absolute expiry set when it started (start + the plan's retention) through
    every later write, and once the session has expired nothing brings it back."""
    _no_retention_override(lumi)
    before = time.time()
    visit = lumi.open_chat()
    after = time.time()
    assert visit.say("hello, do you ship to Canada?").status_code == 200
    _assert_expires_after(lumi, visit, PLAN_RETENTION_S[DEFAULT_PLAN], (before, after))
    first = {key: lumi.redis.pexpiretime(key) for key in visit.keys()}
    assert set(first.values()) == {int(visit.expires_at) * 1000}, (first, visit.expires_at)
    time.sleep(0.05)  # later writes happen at a later millisecond: a sliding expiry would move
    for text in ("and to Mexico?", "thanks!"):
        assert visit.say(text).status_code == 200
        assert {key: lumi.redis.pexpiretime(key) for key in visit.keys()} == first
    # The session expires (its time brought forward: its keys go as they would at the end of the retention).
    for key in first:
        lumi.redis.pexpire(key, 1)
    time.sleep(0.05)
    assert visit.keys() == set()
    response = visit.say("hello again")
    assert response.status_code == 404, response.text
    assert visit.keys() == set(), "a write after expiry brought the session back"


# --- 3. uninstall ----------------------------------------------------------------------------------------------


def check_uninstall_deletes_config_and_token_at_once_and_chat_follows_its_retention(lumi: Lumi) -> None:
    """On uninstall, the store configuration and the access token are deleted inside the app/uninstalled webhook
    request (nothing else runs before its answer: no job runs until this check runs them); indexed products, cached
    feeds and job records are purged by the job right away; chat data is untouched by both and keeps its expiry."""
    shop = lumi.shop
    fill(lumi)
    record = lumi.redis.hgetall(f"lumi:shop:{shop}")
    assert record.get("token") and record.get("settings"), sorted(record)
    chat = {k: lumi.redis.pexpiretime(k) for k in lumi.redis.scan_iter(match=f"lumi:chat:{shop}:*", count=1000)
            if ":rate:" not in k}  # a per-minute flood counter is not chat data
    assert chat and all(expiry > 0 for expiry in chat.values()), chat

    uninstalled = lumi.stack.control.uninstall(shop)
    assert [d["status"] for d in uninstalled["deliveries"]] == [200], uninstalled
    # At once: by the webhook's answer, the record with its settings, plan and encrypted token is gone.
    assert not lumi.redis.exists(f"lumi:shop:{shop}")
    assert not lumi.redis.sismember("lumi:shops:installed", shop)
    assert lumi.services.shops.get(shop) is None
    token = record["token"].encode()
    raw = lumi.services.queue_redis  # bytes: cached feed bodies are gzip
    for key in raw.scan_iter(match=b"lumi:*", count=1000):
        if raw.type(key) == b"hash":
            assert token not in raw.hvals(key), key
    assert {k: lumi.redis.pexpiretime(k) for k in chat} == chat

    # The purge job: the rest goes, chat stays with its own expiry.
    lumi.run_jobs()
    from runtime.data import inventory as data_inventory

    left = {name: store["items"] for name, store in data_inventory(lumi.services, shop).items()
            if store["items"] and store["category"] != "chat"}
    assert left == {}
    assert indexed(lumi.services.meili, shop) == {}
    assert {k: lumi.redis.pexpiretime(k) for k in chat} == chat, "chat data must follow its retention"


# --- 4. deletion of one category ----------------------------------------------------------------------------


def check_deleting_one_category_deletes_exactly_that_category(lumi: Lumi, category: str) -> None:
    """A merchant's deletion request for `category` deletes that category and nothing else: the data inventory
    before and after differs in that category only (which is then empty), and the receipt's digest is the SHA-256
    of the names this check itself saw disappear. In the merchant's terms: the shop stays installed with its token;
    settings go back to the defaults only for `settings`; the feeds are empty (and stay so) only for `products`."""
    shop = lumi.shop
    fill(lumi)
    before_inventory = inventory(lumi)
    assert all(before_inventory[category].get(store) for store in CATEGORY_STORES[category]), before_inventory
    before = held_names(lumi)
    record_before = lumi.services.shops.require(shop)
    token_before = lumi.services.shops.access_token(record_before)

    request = request_deletion(lumi, [category])

    after_inventory = inventory(lumi)
    changed = {c for c in set(before_inventory) | set(after_inventory)
               if before_inventory.get(c) != after_inventory.get(c)}
    assert changed == {category}, (before_inventory, after_inventory)
    assert not any(after_inventory[category].values()), after_inventory[category]
    after = held_names(lumi)
    assert after <= before, sorted(after - before)
    gone = before - after
    receipt = request["receipt"]
    assert category in receipt["categories"], receipt
    assert sum(receipt["counts"].values()) == len(gone), (receipt["counts"], sorted(gone))
    assert receipt["digest"] == sha256_of(gone), "the receipt must prove what disappeared"

    record = lumi.services.shops.require(shop)
    assert lumi.services.shops.is_installed(shop)
    assert lumi.services.shops.access_token(record) == token_before
    if category == "settings":
        assert record.settings == shop_settings.defaults()
    else:
        assert record.settings == record_before.settings
    feed = lumi.http.get(f"{lumi.stack.url}/proxy/feeds/new-arrivals", params={"shop": shop}, timeout=30)
    assert feed.status_code == 200, feed.text
    if category == "products":
        assert feed.json()["products"] == []
        lumi.run_jobs()  # nothing re-indexes behind the merchant's back
        assert indexed(lumi.services.meili, shop) == {}
    else:
        assert feed.json()["products"]


# --- 5. receipts ------------------------------------------------------------------------------------------------


def check_receipts_are_the_only_thing_kept_for_400_days(lumi: Lumi) -> None:
    """After a full deletion, the receipts and the deletion request record are all that is left of the shop, each
    kept 400 days (34560000 s) as the legal record of the deletion."""
    shop = lumi.shop
    fill(lumi)
    request = request_deletion(lumi, ["all"])
    assert held_names(lumi) == set()
    kept = {k for k in lumi.redis.scan_iter(count=1000) if shop in k.split(":")}
    assert kept == {f"lumi:receipts:{shop}", f"lumi:deletion:{shop}:{request['id']}"}, kept
    for key in kept:
        ttl = lumi.redis.ttl(key)
        assert RECEIPT_RETENTION_S - JUST_WRITTEN_S <= ttl <= RECEIPT_RETENTION_S, (key, ttl)
