"""The release step creates the products index with exactly the settings feeds/index.py owns."""

from __future__ import annotations

import subprocess
import sys

import meilisearch

from devtools.services import REPO_ROOT
from feeds.index import PRODUCTS_INDEX, PRODUCTS_SETTINGS, ensure_indexes
from tests.conftest import python_env


def test_release_creates_index_and_applies_settings(env: dict[str, str], meili_client: meilisearch.Client) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "feeds.release"], cwd=REPO_ROOT, env=python_env(env),
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert f"created {PRODUCTS_INDEX}" in result.stdout
    applied = meili_client.index(PRODUCTS_INDEX).get_settings()
    for name in ("searchableAttributes", "filterableAttributes", "sortableAttributes", "rankingRules"):
        assert sorted(applied[name]) == sorted(PRODUCTS_SETTINGS[name]), name
    assert applied["pagination"] == PRODUCTS_SETTINGS["pagination"]
    assert meili_client.get_raw_index(PRODUCTS_INDEX)["primaryKey"] == "uid"


def test_release_is_idempotent(meili_client: meilisearch.Client) -> None:
    first = ensure_indexes(meili_client)
    second = ensure_indexes(meili_client)
    assert first[0] == f"created {PRODUCTS_INDEX}"
    assert second == [f"settings applied to {PRODUCTS_INDEX}"]
