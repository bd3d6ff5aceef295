"""Everything one devshop process holds: settings, shops, tokens, faults, webhook dispatcher, bulk operations."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from flask import Response, current_app

from devshop.faults import FaultInjector
from devshop.shops import DEFAULT_PRODUCTS, DEFAULT_SHOP, ShopRegistry

if TYPE_CHECKING:
    from devshop.bulk import BulkOperation

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULTS: dict[str, Any] = {
    "API_KEY": "lumi-dev-client-id",
    "API_SECRET": "lumi-dev-client-secret-0123456789abcdef",
    "APP_URL": None,
    "APP_TOML": None,  # None: the repo root's shopify.app.toml when there is one
    "SHOPS": {DEFAULT_SHOP: {"products": DEFAULT_PRODUCTS, "seed": 1}},
    "BUCKET_SIZE": None,  # None: by each shop's plan (20 x restore rate)
    "RESTORE_RATE": None,
    "TOKEN_TTL": 3600,
    "SESSION_TOKEN_TTL": 60,  # seconds a session token (launch id_token, shopify.idToken()) lives; Shopify: 60
    "PAGINATION_LIMIT": 25_000,
    "CLOCK": None,  # test hook: a zero-argument callable returning monotonic seconds
    "AUTHORIZE_MODE": "auto",  # "auto": approve installs at once; "page": show the approval page first
    "APP_PROXY": None,  # {url, prefix, subpath}: overrides shopify.app.toml's [app_proxy]
    "APP_PROXY_TIMEOUT": 10.0,  # seconds devshop waits for the app behind the proxy (Shopify's is undocumented)
    "APP_PROXY_BUFFER": False,  # True: the proxy reads the app's whole answer before sending it (else it streams)
    "WEBHOOK_TIMEOUT": 5.0,  # seconds for the app to answer a webhook (Shopify: 5)
    "WEBHOOK_RETRY_SCHEDULE": None,  # seconds before each retry; None: webhooks.DEFAULT_RETRY_SCHEDULE
    "BULK_DELAY": 0.0,  # seconds a bulk export sleeps per 1,000 objects written (to watch RUNNING in tests)
    "BULK_DIR": None,  # where bulk result files go; None: a temporary directory removed when devshop stops
    "BULK_KEEP": 3,  # finished bulk operations per shop whose files are kept; older ones become EXPIRED
    "STOREFRONT_THEME_DIR": None,  # the storefront's theme; None: devshop/theme
    # The theme app extension whose blocks the storefront renders; None: the repo's extensions/lumi-storefront.
    "STOREFRONT_EXTENSION_DIR": None,
}


class DevShopState:
    def __init__(self, config: Mapping[str, Any], api_version: str) -> None:
        from devshop.bulk import BulkOperations
        from devshop.oauth import AUTHORIZE_MODES, DEFAULT_APP_SCOPES, PendingApprovals, TokenStore
        from devshop.proxy import AppProxy
        from devshop.storefront import Storefront
        from devshop.webhooks import DEFAULT_RETRY_SCHEDULE, AppToml, WebhookDispatcher

        settings = {**DEFAULTS, **dict(config)}
        self.api_key: str = settings["API_KEY"]
        self.api_secret: str = settings["API_SECRET"]
        self.app_url: str | None = settings["APP_URL"].rstrip("/") if settings["APP_URL"] else None
        toml_path = settings["APP_TOML"] or (REPO_ROOT / "shopify.app.toml")
        self.toml = AppToml.load(toml_path)
        self.app_scopes: str = (self.toml.scopes if self.toml and self.toml.scopes else DEFAULT_APP_SCOPES)
        self.pagination_limit: int | None = settings["PAGINATION_LIMIT"]
        self.clock: Callable[[], float] = settings["CLOCK"] or time.monotonic
        bucket = None
        if settings["BUCKET_SIZE"] is not None or settings["RESTORE_RATE"] is not None:
            from devshop.cost import plan_bucket

            default_size, default_rate = plan_bucket("standard")
            bucket = (float(settings["BUCKET_SIZE"] or default_size), float(settings["RESTORE_RATE"] or default_rate))
        self.shops = ShopRegistry(self.clock, bucket)
        for domain, spec in (settings["SHOPS"] or {}).items():
            self.shops.create(domain, spec or {})
        self.tokens = TokenStore(self.clock, float(settings["TOKEN_TTL"]))
        self.session_token_ttl = int(settings["SESSION_TOKEN_TTL"])
        if self.session_token_ttl < 1:
            raise ValueError(f"SESSION_TOKEN_TTL must be at least 1 second, got {self.session_token_ttl}")
        self.faults = FaultInjector()
        self.approvals = PendingApprovals()
        self.authorize_mode: str = settings["AUTHORIZE_MODE"]
        if self.authorize_mode not in AUTHORIZE_MODES:
            raise ValueError(f"AUTHORIZE_MODE must be one of {', '.join(AUTHORIZE_MODES)}, got {self.authorize_mode!r}")
        self.app_name: str = (self.toml.name if self.toml and self.toml.name else None) or self.api_key
        self.app_proxy = AppProxy.from_config(settings["APP_PROXY"] or (self.toml.app_proxy if self.toml else None),
                                              self.app_url)
        self.app_proxy_timeout = float(settings["APP_PROXY_TIMEOUT"])
        self.app_proxy_buffer = bool(settings["APP_PROXY_BUFFER"])  # switched by POST /_devshop/proxy
        schedule = settings["WEBHOOK_RETRY_SCHEDULE"]
        self.webhooks = WebhookDispatcher(self.api_secret, self.app_url, self.toml, api_version,
                                          timeout=float(settings["WEBHOOK_TIMEOUT"]),
                                          retry_schedule=DEFAULT_RETRY_SCHEDULE if schedule is None else schedule)
        self.storefront = Storefront(settings["STOREFRONT_THEME_DIR"], settings["STOREFRONT_EXTENSION_DIR"])
        self.bulk = BulkOperations(self.faults, self._bulk_finished, delay=float(settings["BULK_DELAY"]),
                                   directory=settings["BULK_DIR"], keep=int(settings["BULK_KEEP"]))

    def _bulk_finished(self, op: BulkOperation) -> None:
        """bulk_operations/finish to the app, when the shop still has it installed (fire and forget, retried)."""
        from devshop.bulk import FINISH_TOPIC

        shop = self.shops.get(op.shop)
        if shop is None or not self.tokens.installed(shop.domain) or not self.webhooks.destinations(FINISH_TOPIC):
            return
        self.webhooks.emit_later(shop, FINISH_TOPIC, op.webhook_payload())

    def close(self) -> None:
        """The server is stopping: pending webhook retries and running bulk exports end, result files go."""
        self.webhooks.close()
        self.bulk.close()

    def redirect_allowed(self, uri: str) -> bool:
        """Like Shopify's allow-list: the app's host, and the toml's redirect paths when it lists any."""
        parts = urlsplit(uri)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return False
        if not self.app_url:
            return True
        app = urlsplit(self.app_url)
        if (parts.scheme, parts.netloc) != (app.scheme, app.netloc):
            return False
        if self.toml and self.toml.redirect_urls:
            allowed = {urlsplit(u).path.rstrip("/") for u in self.toml.redirect_urls}
            return parts.path.rstrip("/") in allowed
        return True

    @staticmethod
    def json(body: Any, status: int = 200) -> Response:
        return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json")


def get_state() -> DevShopState:
    return current_app.extensions["devshop"]
