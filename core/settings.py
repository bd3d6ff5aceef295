"""The only reader of the environment: typed, validated settings for every Lumi process."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

from cryptography.fernet import Fernet

from core.plans import DEFAULT_RETENTION_DAYS

T = TypeVar("T")

ENVIRONMENTS = ("production", "development", "test")
# Shopify requires the admin page to load App Bridge from its CDN (it auto-updates); only make dev and the
# tests point SHOPIFY_APP_BRIDGE_URL at devshop's stand-in.
APP_BRIDGE_CDN = "https://cdn.shopify.com/shopifycloud/app-bridge.js"
_LOCAL_HOSTS = ("localhost", "127.0.0.1")


class ConfigError(RuntimeError):
    """A configuration variable is missing or malformed; the message names it."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.name = name
        self.problem = problem


CONFIG_ERROR_EXIT_CODE = 2  # what every Lumi process exits with when its configuration is wrong


def report_config_error(err: ConfigError) -> int:
    """Print `Configuration error: NAME: problem` on stderr, one line, no traceback; return the exit code.

    Every process's entry point (web, worker, release, `flask --app web lumi ...`) reports this way. The
    message names the variable and never carries a secret's value (load_settings never puts one in it).
    """
    sys.stderr.write(f"Configuration error: {err}\n")
    return CONFIG_ERROR_EXIT_CODE


@dataclass(frozen=True)
class Settings:
    """Everything a Lumi process may read from its environment, already checked."""

    shopify_api_key: str
    shopify_api_secret: str
    # The secret being retired during a client-secret rotation (docs/secret-rotation.md); None otherwise.
    shopify_api_secret_previous: str | None
    app_url: str
    redis_url: str
    meili_url: str
    meili_master_key: str
    encryption_keys: tuple[str, ...]
    openai_api_key: str | None
    openai_base_url: str | None
    openai_model: str
    smtp_url: str | None
    port: int
    web_concurrency: int
    web_worker_connections: int  # open connections per gevent web worker (streams, feeds, keep-alive)
    shopify_admin_base_url: str
    shopify_app_bridge_url: str  # the App Bridge script every admin page loads first (devshop's stand-in in dev)
    env: str
    log_level: str
    redis_timeout: float
    meili_timeout: float
    worker_heartbeat_max_age: int
    default_plan: str
    plan_retention_days: dict[str, int]
    bulk_threshold: int
    feed_cache_control: str
    chat_retention_seconds: int  # 0: each plan's retention; > 0 overrides it (demos and retention tests)
    openai_timeout: float

    @property
    def shopify_secrets(self) -> tuple[str, ...]:
        """Every secret a Shopify signature may be checked against: the current one first, then the previous one
        while a rotation is under way. Only for verifying; whatever Lumi signs or sends uses the current one."""
        if self.shopify_api_secret_previous is None:
            return (self.shopify_api_secret,)
        return (self.shopify_api_secret, self.shopify_api_secret_previous)

    @property
    def model_enabled(self) -> bool:
        """No key → the chat uses the rule responder and never calls a model provider."""
        return bool(self.openai_api_key)

    def redacted(self) -> dict[str, object]:
        """A printable view with every secret masked (for logs and `--check` output)."""
        secret = {"shopify_api_secret", "shopify_api_secret_previous", "meili_master_key", "encryption_keys",
                  "openai_api_key"}
        out: dict[str, object] = {}
        for key, value in self.__dict__.items():
            if key in secret:
                out[key] = "***" if value else None
            elif key in {"redis_url", "smtp_url"} and value:
                out[key] = _strip_password(str(value))
            else:
                out[key] = value
        return out


def _strip_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return parts._replace(netloc=f"{user}{host}{port}").geturl()


class _Reader:
    """Typed reads from one mapping; every failure raises ConfigError naming the variable."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ

    def raw(self, name: str) -> str | None:
        value = self.environ.get(name)
        if value is None:
            return None
        value = value.strip()
        return value or None

    def required(self, name: str) -> str:
        value = self.raw(name)
        if value is None:
            raise ConfigError(name, "is required but not set")
        return value

    def optional(self, name: str, default: str | None = None) -> str | None:
        value = self.raw(name)
        return default if value is None else value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(name, f"must be an integer, got {value!r}") from None
        if not low <= number <= high:
            raise ConfigError(name, f"must be between {low} and {high}, got {number}")
        return number

    def number(self, name: str, default: float, low: float, high: float) -> float:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(name, f"must be a number, got {value!r}") from None
        if not low <= number <= high:
            raise ConfigError(name, f"must be between {low} and {high}, got {number}")
        return number

    def checked(self, name: str, value: str | None, check: Callable[[str], str | None]) -> str | None:
        """Run `check` (returns a problem or None) on a value that is set."""
        if value is None:
            return None
        problem = check(value)
        if problem:
            raise ConfigError(name, problem)
        return value


def _url_check(*schemes: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        parts = urlsplit(value)
        if parts.scheme not in schemes:
            return f"must be a URL starting with {' or '.join(s + '://' for s in schemes)}"
        if parts.scheme != "unix" and not parts.hostname:
            return "must include a host name"
        return None

    return check


def _script_url_check(value: str) -> str | None:
    """A script the admin page runs with the merchant's session: https, or http only on this machine."""
    parts = urlsplit(value)
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname in _LOCAL_HOSTS:
        return None
    return "must be an https:// URL (http:// only for localhost or 127.0.0.1)"


def _fernet_keys(name: str, value: str) -> tuple[str, ...]:
    keys = tuple(k.strip() for k in value.split(",") if k.strip())
    if not keys:
        raise ConfigError(name, "must hold at least one Fernet key")
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode())
        except (ValueError, TypeError):
            # Never echo the key itself: it is a secret.
            raise ConfigError(name, f"key #{position} is not a valid Fernet key (32 url-safe base64 bytes)") from None
    return keys


def load_settings_or_exit(environ: Mapping[str, str] | None = None) -> Settings:
    """load_settings() for a process's entry point: a ConfigError ends the process (SystemExit) after
    report_config_error(), so the operator reads one line naming the variable instead of a traceback."""
    try:
        return load_settings(environ)
    except ConfigError as err:
        raise SystemExit(report_config_error(err)) from None


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate settings from `environ` (default: the process environment)."""
    env = _Reader(os.environ if environ is None else environ)
    mode = env.optional("LUMI_ENV", "production") or "production"
    if mode not in ENVIRONMENTS:
        raise ConfigError("LUMI_ENV", f"must be one of {', '.join(ENVIRONMENTS)}, got {mode!r}")

    app_url = env.checked("APP_URL", env.required("APP_URL"), _url_check("http", "https"))
    assert app_url is not None
    if mode == "production" and not app_url.startswith("https://"):
        raise ConfigError("APP_URL", "must use https:// in production (Shopify only talks to https apps)")

    admin_base = env.optional("SHOPIFY_ADMIN_BASE_URL", "https://{shop}") or "https://{shop}"
    if "{shop}" not in admin_base:
        raise ConfigError("SHOPIFY_ADMIN_BASE_URL", "must contain the {shop} placeholder, e.g. https://{shop}")
    env.checked(
        "SHOPIFY_ADMIN_BASE_URL", admin_base.replace("{shop}", "shop.example"), _url_check("http", "https")
    )

    app_bridge = env.optional("SHOPIFY_APP_BRIDGE_URL", APP_BRIDGE_CDN) or APP_BRIDGE_CDN
    env.checked("SHOPIFY_APP_BRIDGE_URL", app_bridge, _script_url_check)

    api_key = env.required("SHOPIFY_API_KEY")
    api_secret = env.required("SHOPIFY_API_SECRET")
    previous_secret = env.optional("SHOPIFY_API_SECRET_PREVIOUS")
    if previous_secret == api_secret:
        # The same value twice means the new secret was never set: say so rather than run a rotation that is not one.
        raise ConfigError("SHOPIFY_API_SECRET_PREVIOUS", "must differ from SHOPIFY_API_SECRET (set it to the old "
                          "secret only while rotating; otherwise leave it unset)")

    return Settings(
        shopify_api_key=api_key,
        shopify_api_secret=api_secret,
        shopify_api_secret_previous=previous_secret,
        app_url=app_url.rstrip("/"),
        redis_url=env.checked("REDIS_URL", env.required("REDIS_URL"), _url_check("redis", "rediss", "unix"))
        or "",
        meili_url=(
            env.checked("MEILI_URL", env.required("MEILI_URL"), _url_check("http", "https")) or ""
        ).rstrip("/"),
        meili_master_key=env.required("MEILI_MASTER_KEY"),
        encryption_keys=_fernet_keys("LUMI_ENCRYPTION_KEYS", env.required("LUMI_ENCRYPTION_KEYS")),
        openai_api_key=env.optional("OPENAI_API_KEY"),
        openai_base_url=env.checked(
            "OPENAI_BASE_URL", env.optional("OPENAI_BASE_URL"), _url_check("http", "https")
        ),
        openai_model=env.optional("OPENAI_MODEL", "gpt-4o-mini") or "gpt-4o-mini",
        smtp_url=env.checked("SMTP_URL", env.optional("SMTP_URL"), _url_check("smtp", "smtps")),
        port=env.integer("PORT", 8000, 1, 65535),
        web_concurrency=env.integer("WEB_CONCURRENCY", 2, 1, 64),
        web_worker_connections=env.integer("WEB_WORKER_CONNECTIONS", 250, 10, 5000),
        shopify_admin_base_url=admin_base.rstrip("/"),
        shopify_app_bridge_url=app_bridge,
        env=mode,
        log_level=_log_level(env.optional("LOG_LEVEL", "INFO") or "INFO"),
        redis_timeout=env.number("REDIS_TIMEOUT", 2.0, 0.05, 60.0),
        meili_timeout=env.number("MEILI_TIMEOUT", 2.0, 0.05, 60.0),
        worker_heartbeat_max_age=env.integer("WORKER_HEARTBEAT_MAX_AGE", 60, 5, 3600),
        bulk_threshold=env.integer("LUMI_BULK_THRESHOLD", 1000, 0, 10_000_000),
        feed_cache_control=(
            f"public, max-age={env.integer('LUMI_FEED_MAX_AGE', 60, 0, 86400)}, "
            f"s-maxage={env.integer('LUMI_FEED_S_MAXAGE', 300, 0, 86400)}, "
            f"stale-while-revalidate={env.integer('LUMI_FEED_STALE_WHILE_REVALIDATE', 600, 0, 604800)}, "
            f"stale-if-error={env.integer('LUMI_FEED_STALE_IF_ERROR', 86400, 0, 604800)}"
        ),
        chat_retention_seconds=env.integer("LUMI_CHAT_RETENTION_SECONDS", 0, 0, 3650 * 86400),
        openai_timeout=env.number("OPENAI_TIMEOUT", 20.0, 1.0, 120.0),
        **_plans(env),
    )


def _plans(env: _Reader) -> dict[str, object]:
    days = dict(DEFAULT_RETENTION_DAYS)
    raw = env.optional("LUMI_PLAN_RETENTION_DAYS")
    if raw:
        days = {}
        for item in raw.split(","):
            name, _, value = item.strip().partition(":")
            if not name.isidentifier() or not value.isdigit() or not 1 <= int(value) <= 3650:
                raise ConfigError(
                    "LUMI_PLAN_RETENTION_DAYS", f"must look like 'free:7,growth:30' (days 1-3650), got {item!r}"
                )
            days[name] = int(value)
    default = env.optional("LUMI_DEFAULT_PLAN", "free") or "free"
    if default not in days:
        raise ConfigError("LUMI_DEFAULT_PLAN", f"must be one of {', '.join(days)}, got {default!r}")
    return {"default_plan": default, "plan_retention_days": days}


def _log_level(value: str) -> str:
    level = value.upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError("LOG_LEVEL", f"must be DEBUG, INFO, WARNING or ERROR, got {value!r}")
    return level
