"""The storage and expiry promises (docs/data-handling.md §4-§7) under mutations: each test breaks one promise the
way a careless change would, in this process, and the promise's check (checks.py) must then fail.

A mutation is a `monkeypatch` of what the code really uses (a constant read at call time, a function looked up at
call time, an entry of the deletion registry), never an edit of a source file. The web requests and the RQ jobs run
in this process (conftest.py), so the patch is in effect in both. Values read once at start-up (the plan table, a
Lua script registered when the chat store is built) are patched before `make_lumi()` builds the app.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import pytest

import jobs.deletion
import jobs.purge
import runtime.data
import shopify.shops
from chat import store as chat_store
from chat.store import ChatStore, Session
from core import keys, plans, purge
from core.services import CoreServices
from shopify.shops import ShopStore
from tests.promises import checks
from tests.promises.checks import DAY, Lumi

# --- job records ------------------------------------------------------------------------------------------------


def test_mutation_job_records_kept_30_days_is_caught(monkeypatch: pytest.MonkeyPatch,
                                                     make_lumi: Callable[..., Lumi]) -> None:
    # "Keep job history a month for debugging": every RQ job, result and sync record written from now on.
    monkeypatch.setattr(keys, "JOB_RECORD_TTL", 30 * DAY)
    lumi = make_lumi()
    with pytest.raises(AssertionError):
        checks.check_job_records_expire_within_7_days(lumi)


# --- chat retention per plan --------------------------------------------------------------------------------------


def test_mutation_growth_plan_mapped_to_7_days_is_caught(monkeypatch: pytest.MonkeyPatch,
                                                         make_lumi: Callable[..., Lumi]) -> None:
    # A typo in the plan table: growth keeps chat 7 days instead of 30 (settings read the table at start-up).
    monkeypatch.setitem(plans.DEFAULT_RETENTION_DAYS, "growth", 7)
    lumi = make_lumi()
    assert lumi.services.plans.get("growth").retention_days == 7  # the app runs with the mutated table
    with pytest.raises(AssertionError):
        checks.check_chat_retention_per_plan(lumi)


def test_mutation_shops_plan_ignored_is_caught(monkeypatch: pytest.MonkeyPatch, lumi: Lumi) -> None:
    # Every shop gets the default plan's retention, whatever plan the operator set for it.
    monkeypatch.setattr(plans.Plans, "get", lambda self, name: self._plans[self.default])
    with pytest.raises(AssertionError):
        checks.check_chat_retention_per_plan(lumi)


def test_mutation_sliding_chat_expiry_is_caught(monkeypatch: pytest.MonkeyPatch, lumi: Lumi) -> None:
    # "Keep active chats alive": each write gives the session its full retention again, from now.
    original = ChatStore.append

    def sliding(self: ChatStore, session: Session, entry: dict[str, Any] | None, *args: Any, **kwargs: Any) -> bool:
        written = original(self, session, entry, *args, **kwargs)
        retention = session.expires_at - int(session.started)
        for key in (keys.chat_session(session.shop, session.id), keys.chat_transcript(session.shop, session.id)):
            self.redis.expire(key, retention)
        return written

    monkeypatch.setattr(ChatStore, "append", sliding)
    with pytest.raises(AssertionError):
        checks.check_chat_expiry_is_absolute_and_nothing_brings_it_back(lumi)


def test_mutation_transcript_written_without_its_expiry_is_caught(monkeypatch: pytest.MonkeyPatch,
                                                                  make_lumi: Callable[..., Lumi]) -> None:
    # The write script stops re-applying the session's EXPIREAT to the transcript, which its first RPUSH creates.
    line = "if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('EXPIREAT', KEYS[2], ARGV[1]) end\n"
    assert line in chat_store._WRITE
    monkeypatch.setattr(chat_store, "_WRITE", chat_store._WRITE.replace(line, ""))
    lumi = make_lumi()
    assert "KEYS[2], ARGV[1]" not in lumi.services.chat._write.script  # the store runs the mutated script
    with pytest.raises(AssertionError):
        checks.check_chat_expiry_is_absolute_and_nothing_brings_it_back(lumi)


# --- uninstall --------------------------------------------------------------------------------------------------


def test_mutation_uninstall_that_keeps_the_shop_record_is_caught(monkeypatch: pytest.MonkeyPatch, lumi: Lumi) -> None:
    # A soft uninstall: the shop is marked as gone and the record, with its token, is left to the purge job.
    def soft_uninstall(self: ShopStore, shop: str, *, now: float | None = None) -> bool:
        with self.redis.pipeline() as pipe:
            pipe.srem(keys.SHOPS_INSTALLED, shop)
            pipe.zadd(keys.SHOPS_UNINSTALLED, {shop: time.time() if now is None else now})
            pipe.execute()
        return True

    monkeypatch.setattr(ShopStore, "uninstall", soft_uninstall)
    with pytest.raises(AssertionError):
        checks.check_uninstall_deletes_config_and_token_at_once_and_chat_follows_its_retention(lumi)


def test_mutation_uninstall_purge_that_deletes_chat_is_caught(monkeypatch: pytest.MonkeyPatch, lumi: Lumi) -> None:
    # The uninstall purge takes chat too, instead of leaving it to its retention.
    monkeypatch.setattr(jobs.purge, "UNINSTALL_CATEGORIES", (*jobs.purge.UNINSTALL_CATEGORIES, "chat"))
    with pytest.raises(AssertionError):
        checks.check_uninstall_deletes_config_and_token_at_once_and_chat_follows_its_retention(lumi)


# --- deletion of one category -------------------------------------------------------------------------------------


def _replace_store(monkeypatch: pytest.MonkeyPatch, name: str,
                   purge_with: Callable[[purge.DataStore], Callable[[CoreServices, str], Any]]) -> None:
    """Replace a registered store's purge (the registry entry the deletion code looks up at call time)."""
    store = purge._REGISTRY[name]
    monkeypatch.setitem(purge._REGISTRY, name, dataclasses.replace(store, purge=purge_with(store)))


def test_mutation_settings_purge_that_does_nothing_is_caught(monkeypatch: pytest.MonkeyPatch, lumi: Lumi) -> None:
    # Resetting the settings reports success and writes nothing.
    monkeypatch.setattr(shopify.shops, "reset_settings", lambda client, shop: True)
    with pytest.raises(AssertionError):
        checks.check_deleting_one_category_deletes_exactly_that_category(lumi, "settings")


def test_mutation_settings_purge_that_deletes_the_install_is_caught(monkeypatch: pytest.MonkeyPatch,
                                                                   lumi: Lumi) -> None:
    # The old behaviour: "delete the settings" deletes the shop record (and with it the token: the shop is out).
    monkeypatch.setattr(shopify.shops, "reset_settings", lambda client, shop: bool(client.delete(keys.shop(shop))))
    with pytest.raises(AssertionError):
        checks.check_deleting_one_category_deletes_exactly_that_category(lumi, "settings")


def test_mutation_purge_ignoring_the_requested_category_is_caught(monkeypatch: pytest.MonkeyPatch,
                                                                  lumi: Lumi) -> None:
    # The purge walks every merchant category's stores instead of the requested ones.
    monkeypatch.setattr(runtime.data, "stores", lambda categories=None: purge.stores(purge.CATEGORIES))
    with pytest.raises(AssertionError):
        checks.check_deleting_one_category_deletes_exactly_that_category(lumi, "chat")


def test_mutation_feed_cache_purge_with_a_broad_pattern_is_caught(monkeypatch: pytest.MonkeyPatch,
                                                                  lumi: Lumi) -> None:
    # The feed cache's purge matches `lumi:*:<shop>:*` (meant for feeds:body and feeds:stale), which also matches
    # the shop's chat keys: a products deletion takes the chat with it.
    def broad(store: purge.DataStore) -> Callable[[CoreServices, str], int]:
        def purge_feeds(services: CoreServices, shop: str) -> int:
            deleted = int(store.purge(services, shop))
            found = list(services.redis.scan_iter(match=f"{keys.PREFIX}:*:{shop}:*", count=1000))
            return deleted + (int(services.redis.delete(*found)) if found else 0)

        return purge_feeds

    _replace_store(monkeypatch, "feed-cache", broad)
    with pytest.raises(AssertionError):
        checks.check_deleting_one_category_deletes_exactly_that_category(lumi, "products")


def test_mutation_product_index_purge_that_leaves_the_documents_is_caught(monkeypatch: pytest.MonkeyPatch,
                                                                         lumi: Lumi) -> None:
    # The index purge counts the shop's documents and reports them deleted, but never deletes them.
    def counting(store: purge.DataStore) -> Callable[[CoreServices, str], int]:
        return lambda services, shop: sum(store.inventory(services, shop).values())

    _replace_store(monkeypatch, "product-index", counting)
    with pytest.raises(AssertionError):
        checks.check_deleting_one_category_deletes_exactly_that_category(lumi, "products")


def test_mutation_receipt_digest_over_what_was_held_is_caught(monkeypatch: pytest.MonkeyPatch, lumi: Lumi) -> None:
    # The receipt digests everything the shop held when the request ran, not what the purge made disappear.
    original = runtime.data.purge_with_names

    def declared(services: CoreServices, shop: str, **kwargs: Any) -> tuple[dict[str, Any], dict[str, list[str]]]:
        held = runtime.data.held_names(services, shop)
        receipt, names = original(services, shop, **kwargs)
        receipt["digest"] = runtime.data.digest(held)
        return receipt, names

    monkeypatch.setattr(jobs.deletion, "purge_with_names", declared)
    with pytest.raises(AssertionError):
        checks.check_deleting_one_category_deletes_exactly_that_category(lumi, "chat")


# --- receipts -----------------------------------------------------------------------------------------------------


def test_mutation_receipts_kept_30_days_is_caught(monkeypatch: pytest.MonkeyPatch, lumi: Lumi) -> None:
    monkeypatch.setattr(keys, "RECEIPT_TTL", 30 * DAY)
    with pytest.raises(AssertionError):
        checks.check_receipts_are_the_only_thing_kept_for_400_days(lumi)
