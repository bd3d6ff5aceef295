"""Settings: every variable is checked at start-up and a failure names it."""

from __future__ import annotations

import pytest

from core.settings import ConfigError, load_settings

VALID = {
    "SHOPIFY_API_KEY": "client-id",
    "SHOPIFY_API_SECRET": "client-secret",
    "APP_URL": "https://lumi.example.com",
    "REDIS_URL": "redis://:pw@127.0.0.1:6390/0",
    "MEILI_URL": "http://127.0.0.1:7700",
    "MEILI_MASTER_KEY": "master-key",
    "LUMI_ENCRYPTION_KEYS": "oUJZp-nXq2F4uydU4C9ekvATopcoYOF3I1XYNAzgNMY=",
}


def with_(**changes: str | None) -> dict[str, str]:
    env = dict(VALID)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def test_valid_environment_loads_with_defaults() -> None:
    settings = load_settings(VALID)
    assert settings.env == "production"
    assert settings.port == 8000
    assert settings.shopify_admin_base_url == "https://{shop}"
    assert settings.encryption_keys == (VALID["LUMI_ENCRYPTION_KEYS"],)
    assert settings.model_enabled is False
    assert settings.openai_model == "gpt-4o-mini"


@pytest.mark.parametrize(
    "name",
    ["SHOPIFY_API_KEY", "SHOPIFY_API_SECRET", "APP_URL", "REDIS_URL", "MEILI_URL", "MEILI_MASTER_KEY",
     "LUMI_ENCRYPTION_KEYS"],
)
def test_missing_required_variable_is_named(name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(with_(**{name: None}))
    assert caught.value.name == name
    assert str(caught.value).startswith(f"{name}: ")


def test_blank_counts_as_missing() -> None:
    with pytest.raises(ConfigError, match="^MEILI_MASTER_KEY: is required"):
        load_settings(with_(MEILI_MASTER_KEY="   "))


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("REDIS_URL", "localhost:6379", "must be a URL"),
        ("MEILI_URL", "ftp://meili", "must be a URL"),
        ("APP_URL", "http://lumi.example.com", "https"),
        ("PORT", "eighty", "integer"),
        ("PORT", "70000", "between"),
        ("WEB_CONCURRENCY", "0", "between"),
        ("LUMI_ENCRYPTION_KEYS", "not-a-key", "not a valid Fernet key"),
        ("LUMI_ENCRYPTION_KEYS", f"{VALID['LUMI_ENCRYPTION_KEYS']},short", "key #2"),
        ("SHOPIFY_ADMIN_BASE_URL", "https://example.com", "{shop}"),
        ("OPENAI_BASE_URL", "api.openai.com/v1", "must be a URL"),
        ("SMTP_URL", "mail.example.com:25", "smtp://"),
        ("LUMI_ENV", "staging", "must be one of"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL"),
        ("REDIS_TIMEOUT", "0", "between"),
    ],
)
def test_malformed_variable_is_named(name: str, value: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(with_(**{name: value}))
    assert caught.value.name == name
    assert problem in str(caught.value)


def test_secret_values_never_appear_in_errors_or_redacted_view() -> None:
    bad_key = "this-is-a-secret-but-not-fernet"
    with pytest.raises(ConfigError) as caught:
        load_settings(with_(LUMI_ENCRYPTION_KEYS=bad_key))
    assert bad_key not in str(caught.value)

    shown = str(load_settings(with_(OPENAI_API_KEY="sk-secret-value")).redacted())
    for secret in ("client-secret", "master-key", "sk-secret-value", VALID["LUMI_ENCRYPTION_KEYS"], ":pw@"):
        assert secret not in shown


def test_development_allows_plain_http_and_devshop_base_url() -> None:
    settings = load_settings(
        with_(LUMI_ENV="development", APP_URL="http://localhost:8000/",
              SHOPIFY_ADMIN_BASE_URL="http://127.0.0.1:9100/shops/{shop}")
    )
    assert settings.app_url == "http://localhost:8000"
    assert settings.shopify_admin_base_url.format(shop="a.myshopify.com") == (
        "http://127.0.0.1:9100/shops/a.myshopify.com"
    )


def test_rotated_encryption_keys_keep_order() -> None:
    second = "Kq3mZ8m2d3dQm1u0eS3bQ4f6y3oJq0z8Wm6bQe5mR1c="
    settings = load_settings(with_(LUMI_ENCRYPTION_KEYS=f"{VALID['LUMI_ENCRYPTION_KEYS']}, {second}"))
    assert settings.encryption_keys == (VALID["LUMI_ENCRYPTION_KEYS"], second)


def test_app_bridge_loads_from_shopifys_cdn_unless_configured() -> None:
    # Shopify requires the admin page to load App Bridge from its CDN; only dev and tests point elsewhere.
    assert load_settings(VALID).shopify_app_bridge_url == "https://cdn.shopify.com/shopifycloud/app-bridge.js"
    local = "http://127.0.0.1:9100/_devshop/app-bridge.js"
    assert load_settings(with_(SHOPIFY_APP_BRIDGE_URL=local)).shopify_app_bridge_url == local


@pytest.mark.parametrize("value", ["http://cdn.example.com/app-bridge.js", "app-bridge.js",
                                   "javascript:alert(1)", "ftp://localhost/app-bridge.js"])
def test_app_bridge_url_must_be_https_or_local_http(value: str) -> None:
    # The script runs inside the merchant's admin session: never fetched over plain http from another host.
    with pytest.raises(ConfigError) as caught:
        load_settings(with_(SHOPIFY_APP_BRIDGE_URL=value))
    assert caught.value.name == "SHOPIFY_APP_BRIDGE_URL"


def test_previous_shopify_secret_is_optional_and_checked_after_the_current_one() -> None:
    # Unset or blank: no rotation, signatures are checked under the client secret alone.
    assert load_settings(VALID).shopify_secrets == ("client-secret",)
    assert load_settings(with_(SHOPIFY_API_SECRET_PREVIOUS="  ")).shopify_api_secret_previous is None
    assert load_settings(with_(SHOPIFY_API_SECRET_PREVIOUS="  ")).shopify_secrets == ("client-secret",)
    rotating = load_settings(with_(SHOPIFY_API_SECRET_PREVIOUS=" old-client-secret "))
    assert rotating.shopify_secrets == ("client-secret", "old-client-secret")
    assert rotating.shopify_api_secret == "client-secret"  # what Lumi signs and sends: the current one only


def test_previous_shopify_secret_equal_to_the_current_one_is_refused_by_name() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(with_(SHOPIFY_API_SECRET_PREVIOUS="client-secret"))
    assert caught.value.name == "SHOPIFY_API_SECRET_PREVIOUS"
    assert "must differ from SHOPIFY_API_SECRET" in str(caught.value)
    assert "client-secret" not in str(caught.value).replace("SHOPIFY_API_SECRET", "")


def test_previous_shopify_secret_never_appears_in_the_redacted_view() -> None:
    shown = load_settings(with_(SHOPIFY_API_SECRET_PREVIOUS="old-client-secret-value")).redacted()
    assert "old-client-secret-value" not in str(shown)
    assert shown["shopify_api_secret_previous"] == "***"
    assert load_settings(VALID).redacted()["shopify_api_secret_previous"] is None
