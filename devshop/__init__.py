"""devshop: a stand-in Shopify (Admin GraphQL, OAuth, webhooks) for `make dev` and the tests."""

from devshop.app import create_app

__all__ = ["create_app"]
