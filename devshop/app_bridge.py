"""App Bridge for embedded apps in devshop's admin: the stand-in script (assets/app-bridge.js) the app loads in its
iframe, and the two things the admin frame (admin.py, assets/admin-frame.js) asks devshop for on its behalf: fresh
session tokens for `shopify.idToken()` and the theme app extension's status for `shopify.app.extensions()`.

- GET  /_devshop/app-bridge.js                            the stand-in (what the app sets SHOPIFY_APP_BRIDGE_URL to)
- POST /shops/<shop>/admin/app-bridge/<app>/id-token      {"id_token": <JWT>} (lifetime SESSION_TOKEN_TTL seconds)
- GET  /shops/<shop>/admin/app-bridge/<app>/extensions    {"extensions": [ExtensionInfo, ...]}
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from flask import Blueprint, Response

from devshop.oauth import session_token
from devshop.shops import Shop
from devshop.state import DevShopState, get_state
from devshop.storefront import EMBEDS, TEMPLATES, Storefront, default_block_id

bp = Blueprint("devshop_app_bridge", __name__)

ASSETS = Path(__file__).resolve().parent / "assets"
# devshop's storefront has one theme, always the published one (app.extensions() reports the published theme only).
THEME_ID = "gid://shopify/OnlineStoreTheme/1"


@cache
def asset(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")


@bp.get("/_devshop/app-bridge.js")
def app_bridge_js() -> Response:
    response = Response(asset("app-bridge.js"), mimetype="text/javascript")
    response.headers["Cache-Control"] = "no-cache"  # like Shopify's CDN copy, it may change under the app
    return response


def _error(message: str, status: int) -> Response:
    return DevShopState.json({"error": {"code": "not_found" if status == 404 else "bad_request",
                                        "message": message}}, status)


def _installed_shop(state: DevShopState, shop_domain: str, app: str) -> Shop | Response:
    from devshop.admin import is_this_app

    shop = state.shops.get(shop_domain)
    if shop is None:
        return _error(f"no shop {shop_domain}", 404)
    if not is_this_app(state, app):
        return _error(f"no app {app!r} on {shop.domain}", 404)
    if not state.tokens.installed(shop.domain):
        return _error(f"{state.app_name} is not installed on {shop.domain}", 404)
    return shop


@bp.post("/shops/<shop_domain>/admin/app-bridge/<app>/id-token")
def id_token(shop_domain: str, app: str) -> Response:
    """A fresh session token, as the admin hands App Bridge one (only while the app is installed)."""
    state = get_state()
    shop = _installed_shop(state, shop_domain, app)
    if isinstance(shop, Response):
        return shop
    token = session_token(state.api_key, state.api_secret, shop.domain, lifetime=state.session_token_ttl)
    response = DevShopState.json({"id_token": token})
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/shops/<shop_domain>/admin/app-bridge/<app>/extensions")
def extensions(shop_domain: str, app: str) -> Response:
    state = get_state()
    shop = _installed_shop(state, shop_domain, app)
    if isinstance(shop, Response):
        return shop
    response = DevShopState.json({"extensions": extension_status(state.storefront, shop)})
    response.headers["Cache-Control"] = "no-store"
    return response


def extension_status(storefront: Storefront, shop: Shop) -> list[dict[str, Any]]:
    """`shopify.app.extensions()` for the theme app extension, shaped as App Bridge's ExtensionInfo: per block or
    embed its handle, name, target, status ("active" when placed in the theme, else "available"; devshop has no
    `available_if`, so never "unavailable") and its placements: `template--<template>/<section>/<block id>` for an
    app block, `theme` for an enabled app embed, each with the theme's id."""
    extension = storefront.extension
    names = _schema_names(extension.directory)
    activations = []
    for handle, definition in extension.blocks().items():
        placements: list[dict[str, str]] = []
        if definition.target == "section":
            for template in TEMPLATES:
                section = _app_section(storefront, template)
                if section is None or not definition.shown_on(template):
                    continue
                for n, entry in enumerate(storefront.blocks_for(shop, template), 1):
                    if entry["type"] == handle:
                        block_id = entry.get("id") or default_block_id(handle, template, n)
                        placements.append({"target": f"template--{template}/{section}/{block_id}",
                                           "themeId": THEME_ID})
        elif any(entry["type"] == handle for entry in storefront.blocks_for(shop, EMBEDS)):
            placements.append({"target": "theme", "themeId": THEME_ID})
        name = str(definition.schema.get("name") or handle)
        activations.append({"handle": handle, "name": names.get(name, name), "target": definition.target,
                            "status": "active" if placements else "available", "activations": placements})
    return [{"handle": extension.handle, "type": "theme_app_extension", "activations": activations}]


def _app_section(storefront: Storefront, template: str) -> str | None:
    """The section of a JSON template that takes app blocks (devshop renders them in the first such section)."""
    spec = storefront.theme.template(template)
    for key in spec.get("order", []):
        _, schema = storefront.theme.section(str(spec["sections"][key]["type"]))
        if any(block.get("type") == "@app" for block in schema.get("blocks") or []):
            return str(key)
    return None


def _schema_names(directory: Path) -> dict[str, str]:
    """`t:` keys of the extension's English schema locale → their text (a block's name is usually one)."""
    path = directory / "locales" / "en.default.schema.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    found: dict[str, str] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}.{key}" if prefix else key)
        elif isinstance(node, str):
            found[f"t:{prefix}"] = node

    walk(data, "")
    return found
