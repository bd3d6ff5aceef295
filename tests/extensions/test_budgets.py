"""Size budgets and schema/translation checks of the theme app extension (extensions/lumi-storefront).

Budgets: Shopify's deploy limits (15 KB per locale file, 100 KB of Liquid in all) and the storefront ones
(theme-check's 10,000 bytes per JavaScript file, measured raw; our own 8 KB gzipped for the block's JavaScript
and CSS together, what a shopper downloads before the feed). Then the block's schema (the settings the browser
tests and the README rely on) and its translations: every key the block uses exists in every language.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import pytest

from devtools.services import REPO_ROOT

EXTENSION = REPO_ROOT / "extensions" / "lumi-storefront"
BLOCK = EXTENSION / "blocks" / "product-feed.liquid"
LOCALES = EXTENSION / "locales"
LANGUAGES = ("en", "fr", "de", "es")

JS_RAW_LIMIT = 10_000  # theme-check AssetSizeAppBlockJavaScript: stat() size, uncompressed
INITIAL_GZIP_LIMIT = 8 * 1024  # the block's JavaScript + CSS on the wire
LOCALE_LIMIT = 15 * 1024  # Shopify: per locale file
LIQUID_LIMIT = 100 * 1024  # Shopify: all Liquid files of the extension
SETTING_IDS = {"feed", "collection", "product", "search_terms", "heading", "limit", "layout", "columns_desktop",
               "columns_mobile", "image_ratio", "show_vendor", "show_compare_at", "show_badges"}
FEEDS = ["new-arrivals", "best-sellers", "trending", "on-sale", "back-in-stock", "collection", "similar", "search"]


def schema() -> dict[str, Any]:
    match = re.search(r"{%-?\s*schema\s*-?%}(.*?){%-?\s*endschema\s*-?%}", BLOCK.read_text(), re.S)
    assert match, "the block ends with a {% schema %}"
    return json.loads(match.group(1))


def locale(language: str, kind: str = "") -> dict[str, Any]:
    name = f"{language}.default{kind}.json" if language == "en" else f"{language}{kind}.json"
    return json.loads((LOCALES / name).read_text(encoding="utf-8"))


def lookup(tree: dict[str, Any], key: str) -> Any:
    node: Any = tree
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def leaves(tree: dict[str, Any], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for name, value in tree.items():
        path = f"{prefix}{name}"
        keys |= leaves(value, path + ".") if isinstance(value, dict) else {path}
    return keys


def schema_keys(node: Any) -> set[str]:
    """Every `t:` reference in the schema."""
    if isinstance(node, str):
        return {node[2:]} if node.startswith("t:") else set()
    if isinstance(node, dict):
        node = list(node.values())
    if isinstance(node, list):
        return set().union(*(schema_keys(item) for item in node)) if node else set()
    return set()


def gzipped(path: Path) -> int:
    return len(gzip.compress(path.read_bytes(), compresslevel=6))


def test_every_javascript_asset_is_at_most_10000_bytes_uncompressed() -> None:
    assets = sorted((EXTENSION / "assets").glob("*.js"))
    assert assets
    sizes = {path.name: path.stat().st_size for path in assets}
    assert all(size <= JS_RAW_LIMIT for size in sizes.values()), sizes


def test_the_blocks_javascript_and_css_are_at_most_8_kb_gzipped_together() -> None:
    block = schema()
    files = [EXTENSION / "assets" / block["javascript"], EXTENSION / "assets" / block["stylesheet"]]
    sizes = {path.name: gzipped(path) for path in files}
    assert sum(sizes.values()) <= INITIAL_GZIP_LIMIT, sizes


def test_locale_files_are_valid_json_of_at_most_15_kb() -> None:
    files = sorted(LOCALES.glob("*.json"))
    assert {path.name for path in files} == {
        *(f"{lang}.json" for lang in LANGUAGES[1:]), *(f"{lang}.schema.json" for lang in LANGUAGES[1:]),
        "en.default.json", "en.default.schema.json"}
    for path in files:
        assert path.stat().st_size <= LOCALE_LIMIT, (path.name, path.stat().st_size)
        json.loads(path.read_text(encoding="utf-8"))  # no comments, no trailing commas


def test_all_liquid_is_at_most_100_kb() -> None:
    total = sum(path.stat().st_size for path in EXTENSION.rglob("*.liquid"))
    assert 0 < total <= LIQUID_LIMIT, total


def test_the_block_schema() -> None:
    block = schema()
    assert block["target"] == "section"
    assert (EXTENSION / "assets" / block["javascript"]).is_file()
    assert (EXTENSION / "assets" / block["stylesheet"]).is_file()
    settings = {s["id"]: s for s in block["settings"] if "id" in s}
    assert set(settings) == SETTING_IDS
    assert [option["value"] for option in settings["feed"]["options"]] == FEEDS
    assert [option["value"] for option in settings["layout"]["options"]] == ["grid", "scroller"]
    assert [o["value"] for o in settings["image_ratio"]["options"]] == ["square", "portrait", "landscape", "natural"]
    assert settings["collection"]["type"] == "collection"
    assert settings["product"]["type"] == "product" and settings["product"]["autofill"] is True
    assert {settings[key]["type"] for key in ("show_vendor", "show_compare_at", "show_badges")} == {"checkbox"}
    assert {settings[key]["type"] for key in ("limit", "columns_desktop", "columns_mobile")} == {"range"}
    for language in LANGUAGES:
        name = block["name"]
        name = lookup(locale(language, ".schema"), name[2:]) if name.startswith("t:") else name
        assert isinstance(name, str) and 0 < len(name) < 25, (language, name)


def test_the_block_reads_only_settings_its_schema_declares() -> None:
    # theme-check does not check app blocks' block.settings.<id> against the schema: a typo would read nil.
    used = set(re.findall(r"""block\.settings(?:\.(\w+)|\[['"](\w+)['"]\])""", BLOCK.read_text()))
    names = {dotted or quoted for dotted, quoted in used}
    assert names == SETTING_IDS, names ^ SETTING_IDS


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_translation_the_block_uses_exists(language: str) -> None:
    source = BLOCK.read_text()
    used = set(re.findall(r"""['"]([\w.]+)['"]\s*\|\s*t\b""", source))
    assert used, "the block's strings come from the locale files"
    storefront = locale(language)
    assert {key for key in used if not isinstance(lookup(storefront, key), str)} == set()
    editor = locale(language, ".schema")
    assert {key for key in schema_keys(schema()) if not isinstance(lookup(editor, key), str)} == set()
    # Same keys in every language as in English (nothing missing, nothing left over).
    assert leaves(storefront) == leaves(locale("en"))
    assert leaves(editor) == leaves(locale("en", ".schema"))


def test_the_assets_keep_the_blocks_promises() -> None:
    css = re.sub(r"/\*.*?\*/", "", (EXTENSION / "assets" / "lumi-feed.css").read_text(), flags=re.S)
    js = (EXTENSION / "assets" / "lumi-feed.js").read_text()
    assert "!important" not in css, "the theme and the merchant must be able to override every rule"
    assert not re.search(r"https?://|@import|@font-face", css), "no other origin, no font of our own"
    assert not re.search(r"localStorage|sessionStorage|document\.cookie|indexedDB", js), "nothing stored"
    assert not re.search(r"https?://", js), "requests go to the shop's own origin only"
