"""The one pinned Shopify Admin API version (client, devshop and shopify.app.toml agree on it)."""

API_VERSION = "2026-10"
