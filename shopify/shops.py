"""The one owner of the per-shop record in Redis: install state, encrypted tokens, plan and settings.

A record is one Redis hash (`core.keys.shop`). Tokens are Fernet-encrypted at rest; settings are a
JSON document validated by `shopify.shop_settings`, with a version number bumped on every change
so caches can key on it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import redis

from core import keys
from core.crypto import SecretBox
from core.plans import Plan, Plans
from core.purge import DataStore, register
from core.services import CoreServices
from shopify import shop_settings
from shopify.oauth import TokenSet

STATUS_INSTALLED = "installed"
STATUS_REAUTH = "reauth_required"


class ShopNotFound(LookupError):
    pass


@dataclass
class ShopRecord:
    domain: str
    status: str
    scopes: tuple[str, ...]
    installed_at: float
    plan_override: str | None
    settings: dict[str, Any]
    settings_version: int
    token_expires_at: float | None
    has_refresh_token: bool
    reauth_reason: str | None = None
    _encrypted: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def needs_reauth(self) -> bool:
        return self.status == STATUS_REAUTH


class ShopStore:
    def __init__(self, client: redis.Redis, box: SecretBox, plans: Plans) -> None:
        self.redis = client
        self.box = box
        self.plans = plans

    # --- reading ---------------------------------------------------------------------------------

    def get(self, shop: str) -> ShopRecord | None:
        raw = self.redis.hgetall(keys.shop(shop))
        if not raw or "installed_at" not in raw:
            return None
        return self._record(shop, raw)

    def queue_settings_stamp(self, pipe: Any, shop: str) -> None:
        """Queue on `pipe` the read of [installed_at, settings_version]: all a hot path needs to tell whether its
        in-process copy of the settings is current, in the same round trip as its own reads. Both fields are None
        when the shop is not installed; installed_at changes on a reinstall, the version on every settings change."""
        pipe.hmget(keys.shop(shop), ["installed_at", "settings_version"])

    def settings_snapshot(self, shop: str) -> tuple[dict[str, Any], int] | None:
        """Just the settings and their version (one HMGET; the storefront's hot path needs nothing else)."""
        installed_at, raw, version = self.redis.hmget(keys.shop(shop), ["installed_at", "settings", "settings_version"])
        if installed_at is None or raw is None:
            return None
        return shop_settings.load(json.loads(raw)), int(version or 1)

    def require(self, shop: str) -> ShopRecord:
        record = self.get(shop)
        if record is None:
            raise ShopNotFound(shop)
        return record

    def is_installed(self, shop: str) -> bool:
        return bool(self.redis.sismember(keys.SHOPS_INSTALLED, shop))

    def plan(self, record: ShopRecord) -> Plan:
        return self.plans.get(record.plan_override)

    def access_token(self, record: ShopRecord) -> str | None:
        encrypted = record._encrypted.get("token")
        return self.box.decrypt(encrypted) if encrypted else None

    def refresh_token(self, record: ShopRecord) -> str | None:
        encrypted = record._encrypted.get("refresh")
        return self.box.decrypt(encrypted) if encrypted else None

    def installed_shops(self) -> list[str]:
        return sorted(self.redis.smembers(keys.SHOPS_INSTALLED))

    # --- writing ---------------------------------------------------------------------------------

    def install(self, shop: str, tokens: TokenSet, *, now: float | None = None) -> ShopRecord:
        """Create the record (or refresh it on reinstall/re-auth), keeping existing settings and plan."""
        current = time.time() if now is None else now
        key = keys.shop(shop)
        fields: dict[str, str] = {
            "domain": shop,
            "status": STATUS_INSTALLED,
            "scopes": ",".join(tokens.scopes),
            **self._token_fields(tokens),
        }
        with self.redis.pipeline() as pipe:
            pipe.hsetnx(key, "installed_at", repr(current))
            pipe.hsetnx(key, "settings", json.dumps(shop_settings.defaults()))
            pipe.hsetnx(key, "settings_version", "1")
            # Drop what the new token set may not carry (a non-expiring token has no expiry or refresh).
            pipe.hdel(key, "reauth_reason", "token_expires_at", "refresh", "refresh_expires_at")
            pipe.hset(key, mapping=fields)
            pipe.sadd(keys.SHOPS_INSTALLED, shop)
            pipe.zrem(keys.SHOPS_UNINSTALLED, shop)
            pipe.execute()
        return self.require(shop)

    def save_tokens(self, shop: str, tokens: TokenSet) -> None:
        """Persist a refreshed pair (before anyone uses it: a rotated refresh token must never be lost)."""
        key = keys.shop(shop)
        with self.redis.pipeline() as pipe:
            pipe.hdel(key, "token_expires_at", "refresh", "refresh_expires_at", "reauth_reason")
            pipe.hset(key, mapping={**self._token_fields(tokens), "status": STATUS_INSTALLED})
            pipe.execute()

    def mark_reauth(self, shop: str, reason: str) -> None:
        key = keys.shop(shop)
        if self.redis.exists(key):
            self.redis.hset(key, mapping={"status": STATUS_REAUTH, "reauth_reason": reason[:200]})

    def set_plan(self, shop: str, plan: str | None) -> ShopRecord:
        if plan is not None and plan not in self.plans:
            raise ValueError(f"unknown plan {plan!r}; plans are {', '.join(self.plans.names())}")
        self.require(shop)
        if plan is None:
            self.redis.hdel(keys.shop(shop), "plan")
        else:
            self.redis.hset(keys.shop(shop), "plan", plan)
        return self.require(shop)

    def update_settings(self, shop: str, patch: Any) -> ShopRecord:
        """Validate and apply a partial update atomically; bumps the settings version. Raises SettingsError."""
        key = keys.shop(shop)
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.hget(key, "settings")
                    if raw is None:
                        raise ShopNotFound(shop)
                    merged = shop_settings.apply_patch(shop_settings.load(json.loads(raw)), patch)
                    pipe.multi()
                    pipe.hset(key, "settings", json.dumps(merged))
                    pipe.hincrby(key, "settings_version", 1)
                    pipe.execute()
                    break
                except redis.WatchError:
                    continue  # someone else changed the record meanwhile: re-read and re-validate
        return self.require(shop)

    def uninstall(self, shop: str, *, now: float | None = None) -> bool:
        """Delete configuration and tokens at once; remember only that (and when) the shop left."""
        current = time.time() if now is None else now
        with self.redis.pipeline() as pipe:
            pipe.delete(keys.shop(shop))
            pipe.srem(keys.SHOPS_INSTALLED, shop)
            pipe.zadd(keys.SHOPS_UNINSTALLED, {shop: current})
            deleted, _, _ = pipe.execute()
        return bool(deleted)

    # --- helpers ---------------------------------------------------------------------------------

    def _token_fields(self, tokens: TokenSet) -> dict[str, str]:
        fields = {"token": self.box.encrypt(tokens.access_token), "scopes": ",".join(tokens.scopes)}
        if tokens.expires_at is not None:
            fields["token_expires_at"] = repr(tokens.expires_at)
        if tokens.refresh_token:
            fields["refresh"] = self.box.encrypt(tokens.refresh_token)
        if tokens.refresh_expires_at is not None:
            fields["refresh_expires_at"] = repr(tokens.refresh_expires_at)
        return fields

    def _record(self, shop: str, raw: dict[str, str]) -> ShopRecord:
        expires = raw.get("token_expires_at")
        return ShopRecord(
            domain=shop,
            status=raw.get("status", STATUS_INSTALLED),
            scopes=tuple(s for s in raw.get("scopes", "").split(",") if s),
            installed_at=float(raw["installed_at"]),
            plan_override=raw.get("plan") or None,
            settings=shop_settings.load(json.loads(raw.get("settings") or "{}")),
            settings_version=int(raw.get("settings_version", "1")),
            token_expires_at=float(expires) if expires else None,
            has_refresh_token="refresh" in raw,
            reauth_reason=raw.get("reauth_reason"),
            _encrypted={name: raw[name] for name in ("token", "refresh") if name in raw},
        )


def reset_settings(client: redis.Redis, shop: str) -> bool:
    """Delete the merchant's settings: back to the defaults, version bumped (caches keyed on it go stale). The
    record, its tokens, plan and install state stay: the shop remains installed. False when there is no record."""
    key = keys.shop(shop)
    with client.pipeline() as pipe:
        while True:
            try:
                pipe.watch(key)
                installed_at, raw = pipe.hmget(key, ["installed_at", "settings"])
                if installed_at is None or raw is None:
                    pipe.unwatch()
                    return False
                pipe.multi()
                pipe.hset(key, "settings", json.dumps(shop_settings.defaults()))
                pipe.hincrby(key, "settings_version", 1)
                pipe.execute()
                return True
            except redis.WatchError:
                continue


def changed_settings(client: redis.Redis, shop: str) -> list[str]:
    """Dotted names of the settings that differ from the defaults (names only, never values)."""
    raw = client.hget(keys.shop(shop), "settings")
    if raw is None:
        return []
    current, defaults = shop_settings.load(json.loads(raw)), shop_settings.defaults()

    def walk(prefix: str, value: Any, default: Any) -> list[str]:
        if isinstance(value, dict) and isinstance(default, dict) and default:
            return [name for field in sorted(set(value) | set(default))
                    for name in walk(f"{prefix}{field}.", value.get(field), default.get(field))]
        return [prefix.rstrip(".")] if value != default else []

    return walk("", current, defaults)


def _register() -> None:
    def purge_settings(services: CoreServices, shop: str) -> list[str]:
        """The app settings only (reset to defaults); the shop stays installed with its tokens."""
        return [f"{keys.shop(shop)}#settings"] if reset_settings(services.redis, shop) else []

    def settings_inventory(services: CoreServices, shop: str) -> dict[str, int]:
        changed = changed_settings(services.redis, shop)
        return {f"{keys.shop(shop)}#settings (changed from defaults)": len(changed)} if changed else {}

    register(
        DataStore(
            name="shop-settings",
            category="settings",
            description="app settings: feeds, exclusions and pins, widget style, escalation email, language",
            purge=purge_settings,
            inventory=settings_inventory,
        )
    )

    def purge(services: CoreServices, shop: str) -> list[str]:
        """The install record (the uninstalled marker stays for sweeps)."""
        gone = [keys.shop(shop)] if services.redis.delete(keys.shop(shop)) else []
        if services.redis.srem(keys.SHOPS_INSTALLED, shop):
            gone.append(f"{keys.SHOPS_INSTALLED}#{shop}")
        services.redis.delete(keys.token_refresh_lock(shop))
        return gone

    def inventory(services: CoreServices, shop: str) -> dict[str, int]:
        key = keys.shop(shop)
        return {key: 1} if services.redis.exists(key) else {}

    register(
        DataStore(
            name="shop-record",
            category="install",
            description="the install: scopes, plan, install time, encrypted access and refresh tokens, settings",
            purge=purge,
            inventory=inventory,
        )
    )


_register()
