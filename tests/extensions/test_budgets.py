"""Size budgets and schema/translation checks of the theme app extension (extensions/lumi-storefront).

Budgets: Shopify's deploy limits (15 KB per locale file, 100 KB of Liquid in all) and the storefront ones
(theme-check's 10,000 bytes per JavaScript file, measured raw; our own 8 KB gzipped for the block's JavaScript
and CSS together, what a shopper downloads before the feed). The "Support chat" app embed is on every page, so it
has its own: at most 3 KB gzipped of JavaScript and CSS before the shopper opens it, 8 KB gzipped for the whole
widget once open, and no asset over 10,000 bytes raw. Then the blocks' schemas (the settings the browser tests and
the README rely on) and their translations: every key a block uses exists in every language.
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
EMBED = EXTENSION / "blocks" / "support-chat.liquid"
LOCALES = EXTENSION / "locales"
LANGUAGES = ("en", "fr", "de", "es")

JS_RAW_LIMIT = 10_000  # theme-check AssetSizeAppBlockJavaScript: stat() size, uncompressed
INITIAL_GZIP_LIMIT = 8 * 1024  # the block's JavaScript + CSS on the wire
LOCALE_LIMIT = 15 * 1024  # Shopify: per locale file
LIQUID_LIMIT = 100 * 1024  # Shopify: all Liquid files of the extension
ASSET_RAW_LIMIT = 10_000  # every asset of the chat embed, raw (the theme-check JavaScript rule, applied to all)
CHAT_INITIAL_GZIP_LIMIT = 3 * 1024  # the embed's JavaScript + CSS on every page, before the chat is opened
CHAT_WHOLE_GZIP_LIMIT = 8 * 1024  # everything the widget loads once open
LAUNCHER_CSS = "lumi-chat.css"  # the launcher's own stylesheet, linked by lumi-chat.js
CHAT_SETTING_IDS = {"position", "offset_x", "offset_y", "offset_y_mobile", "launcher_label"}
SETTING_IDS = {"feed", "collection", "product", "search_terms", "heading", "limit", "layout", "columns_desktop",
               "columns_mobile", "image_ratio", "show_vendor", "show_compare_at", "show_badges"}
FEEDS = ["new-arrivals", "best-sellers", "trending", "on-sale", "back-in-stock", "collection", "similar", "search"]


def schema(block: Path = BLOCK) -> dict[str, Any]:
    match = re.search(r"{%-?\s*schema\s*-?%}(.*?){%-?\s*endschema\s*-?%}", block.read_text(), re.S)
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


@pytest.mark.parametrize("block", [BLOCK, EMBED], ids=["product-feed", "support-chat"])
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_translation_the_block_uses_exists(language: str, block: Path) -> None:
    source = block.read_text()
    used = set(re.findall(r"""['"]([\w.]+)['"]\s*\|\s*t\b""", source))
    assert used, "the block's strings come from the locale files"
    storefront = locale(language)
    assert {key for key in used if not isinstance(lookup(storefront, key), str)} == set()
    editor = locale(language, ".schema")
    assert {key for key in schema_keys(schema(block)) if not isinstance(lookup(editor, key), str)} == set()
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


# --- the "Support chat" app embed -------------------------------------------------------------------------------


def chat_assets() -> dict[str, Path]:
    """Every file the embed loads: its schema's JavaScript (on every page) and the assets it
    passes to them with asset_url (imported when the shopper opens the chat)."""
    embed = schema(EMBED)
    names = {embed["javascript"], *re.findall(r"""['"]([\w.-]+)['"]\s*\|\s*asset_url""", EMBED.read_text())}
    return {name: EXTENSION / "assets" / name for name in sorted(names)}


def test_the_chat_embeds_first_load_is_at_most_3_kb_gzipped() -> None:
    """Before the shopper touches it, the page loads the schema's script and the launcher's stylesheet (which the
    script links after load: a schema stylesheet would go in <head> and block the first paint of every page)."""
    embed = schema(EMBED)
    assert "stylesheet" not in embed, "render-blocking on every page"
    files = [EXTENSION / "assets" / embed["javascript"], EXTENSION / "assets" / LAUNCHER_CSS]
    assert f"'{LAUNCHER_CSS}' | asset_url" in EMBED.read_text()
    sizes = {path.name: gzipped(path) for path in files}
    assert sum(sizes.values()) <= CHAT_INITIAL_GZIP_LIMIT, sizes


def test_the_whole_chat_widget_is_at_most_8_kb_gzipped_and_each_asset_at_most_10000_bytes() -> None:
    assets = chat_assets()
    assert len(assets) >= 4 and all(path.is_file() for path in assets.values()), assets
    raw = {name: path.stat().st_size for name, path in assets.items()}
    assert all(size <= ASSET_RAW_LIMIT for size in raw.values()), raw
    sizes = {name: gzipped(path) for name, path in assets.items()}
    assert sum(sizes.values()) <= CHAT_WHOLE_GZIP_LIMIT, sizes


def test_the_chat_embed_schema() -> None:
    embed = schema(EMBED)
    assert embed["target"] == "body"
    settings = {s["id"]: s for s in embed["settings"] if "id" in s}
    assert set(settings) == CHAT_SETTING_IDS
    assert [o["value"] for o in settings["position"]["options"]] == ["auto", "bottom_right", "bottom_left"]
    for key in ("offset_x", "offset_y", "offset_y_mobile"):
        setting = settings[key]
        assert setting["type"] == "range" and setting["unit"] == "px" and setting["min"] == 0, setting
        # Shopify: at most 101 steps; and room to clear a 56 px mobile button with a margin.
        assert (setting["max"] - setting["min"]) / setting["step"] <= 101 and setting["max"] >= 100, setting
        assert setting["min"] <= setting["default"] <= setting["max"], setting
    assert settings["launcher_label"]["type"] == "text" and "default" not in settings["launcher_label"]
    for language in LANGUAGES:
        name = lookup(locale(language, ".schema"), embed["name"][2:])
        assert isinstance(name, str) and 0 < len(name) < 25, (language, name)


def test_the_chat_embed_reads_only_settings_its_schema_declares() -> None:
    used = set(re.findall(r"""block\.settings(?:\.(\w+)|\[['"](\w+)['"]\])""", EMBED.read_text()))
    names = {dotted or quoted for dotted, quoted in used}
    assert names == CHAT_SETTING_IDS, names ^ CHAT_SETTING_IDS


def test_the_chat_assets_keep_the_embeds_promises() -> None:
    assets = chat_assets()
    css = {name: re.sub(r"/\*.*?\*/", "", path.read_text(), flags=re.S) for name, path in assets.items()
           if name.endswith(".css")}
    js = {name: re.sub(r"/\*.*?\*/", "", path.read_text(), flags=re.S) for name, path in assets.items()
          if name.endswith(".js")}
    for name, text in css.items():
        assert "!important" not in text, name
        assert not re.search(r"https?://|@import|@font-face", text), name
        # Right-to-left safe: sides are logical (inset-inline, margin-inline…), never left/right.
        assert not re.search(r"(?<![\w-])(left|right|(margin|padding|border)-(left|right))\s*:", text), name
        assert not re.search(r"\banimation\b", re.sub(r"@media \(prefers-reduced-motion: no-preference\).*?\n}",
                                                      "", text, flags=re.S)), (name, "motion only when allowed")
        # Below a theme's drawers and modals (Dawn's cart drawer: 1000), never Shopify Chat's 2147483647.
        for value in re.findall(r"z-index:\s*([^;]+);", text):
            assert max(int(n) for n in re.findall(r"\d+", value)) < 1000, (name, value)
    for name, text in js.items():
        assert not re.search(r"localStorage|document\.cookie|indexedDB", text), (name, "nothing but sessionStorage")
        assert not re.search(r"https?://", text), (name, "requests go to the shop's origin or the session's stream_url")
        assert "innerHTML" not in text, (name, "the replies' text is never parsed as HTML")
    assert re.findall(r"sessionStorage\.\w+\((\w+)", "".join(js.values())), "the session is kept by key"
    assert "'lumi-chat:'" in "".join(js.values()), "one sessionStorage key, lumi-chat:<shop>"
    launcher = js[schema(EMBED)["javascript"]]
    assert "import(" in launcher and "lumi-chat-panel" not in launcher, "the panel is imported on interaction"
