"""The Shopify layer's components on top of the core clients: plans, shop records, OAuth, access tokens."""

from __future__ import annotations

from functools import cached_property

from core.plans import Plans
from core.services import CoreServices
from shopify.oauth import OAuthClient
from shopify.shops import ShopStore
from shopify.tokens import TokenManager


class ShopifyServices(CoreServices):
    @cached_property
    def plans(self) -> Plans:
        return Plans(self.settings.plan_retention_days, self.settings.default_plan)

    @cached_property
    def shops(self) -> ShopStore:
        return ShopStore(self.redis, self.box, self.plans)

    @cached_property
    def oauth(self) -> OAuthClient:
        return OAuthClient(
            api_key=self.settings.shopify_api_key,
            api_secret=self.settings.shopify_api_secret,
            admin_base_url=self.settings.shopify_admin_base_url,
        )

    @cached_property
    def tokens(self) -> TokenManager:
        return TokenManager(self.shops, self.oauth, self.redis)

    def close(self) -> None:
        if "oauth" in self.__dict__:  # built on first use only
            self.oauth.session.close()
        super().close()
