"""Fixtures for the promise checks: a whole Lumi in this process, so a test's monkeypatch reaches the code it checks.

- `make_lumi(**devshop_config)` builds a `checks.Lumi`: devshop and Lumi's app, each served on a real port by a thread
  of this process (`tests.conftest.Stack`), on the private Redis and Meilisearch, with a small catalogue and the demo
  shop installed through OAuth (which queues its first sync). No worker process runs: queued RQ jobs run only when a
  check calls `lumi.run_jobs()`, in this process, on an RQ `SimpleWorker` set up like `jobs.worker`'s, and the jobs
  build their services from this process's environment, which the fixture points at the same servers.
- `lumi`: `make_lumi()` as is.

A mutation patches what the code really uses (a module constant, a function, a registry entry) with `monkeypatch`.
Values read once at start-up (settings, the plan table) must be patched BEFORE `make_lumi()` is called; everything
else may be patched after. Then the same check that passes on the unmodified code must raise AssertionError.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import meilisearch
import pytest

from feeds.index import ensure_indexes
from tests.conftest import DEMO_SHOP, Stack
from tests.promises.checks import Lumi

# A catalogue small enough to sync in a moment; one market and a few orders (these checks are about data, not prices).
CATALOGUE = {DEMO_SHOP: {"products": 6, "seed": 1, "orders": 5, "markets": False}}
# Variables a Lumi process reads (core.settings): any of these in the test runner's own environment that the stack
# does not set (a retention override, a model key, SMTP) must not leak into the in-process jobs.
SETTINGS_PREFIXES = ("LUMI_", "SHOPIFY_", "OPENAI_", "MEILI_", "REDIS_", "SMTP_", "WEB_", "WORKER_")
SETTINGS_NAMES = {"APP_URL", "PORT", "LOG_LEVEL"}


@pytest.fixture
def make_lumi(make_stack: Callable[..., Stack], meili_client: meilisearch.Client,
              monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Lumi]]:
    from jobs import context

    ensure_indexes(meili_client)
    built: list[Lumi] = []

    def make(**devshop_config: object) -> Lumi:
        assert not built, "one Lumi per test: the in-process jobs read one environment"
        stack = make_stack(**{"SHOPS": CATALOGUE, **devshop_config})
        # The jobs' services (jobs.context) come from os.environ, as in a worker process: make it this stack's.
        for name in list(os.environ):
            if (name.startswith(SETTINGS_PREFIXES) or name in SETTINGS_NAMES) and name not in stack.env:
                monkeypatch.delenv(name)
        for name, value in stack.env.items():
            monkeypatch.setenv(name, value)
        context.services.cache_clear()
        lumi = Lumi(stack)
        built.append(lumi)
        stack.install(DEMO_SHOP)
        return lumi

    yield make
    if context.services.cache_info().currsize:
        context.services().close()
    context.services.cache_clear()


@pytest.fixture
def lumi(make_lumi: Callable[..., Lumi]) -> Lumi:
    return make_lumi()
