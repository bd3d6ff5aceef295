"""Everything a Lumi process talks to, built once from settings (web hangs it on the app; jobs build one per worker)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import meilisearch
import redis

from core.clients import make_meili, make_queue_redis, make_redis
from core.crypto import SecretBox
from core.settings import Settings

if TYPE_CHECKING:  # imported lazily below so the web process never pays for what it does not use
    from chat.llm import ModelClient
    from chat.store import ChatStore
    from shopify.oauth import OAuthClient
    from shopify.plans import Plans
    from shopify.shops import ShopStore
    from shopify.tokens import TokenManager


@dataclass
class Services:
    settings: Settings
    redis: redis.Redis
    queue_redis: redis.Redis
    meili: meilisearch.Client

    @cached_property
    def box(self) -> SecretBox:
        return SecretBox(self.settings.encryption_keys)

    @cached_property
    def plans(self) -> Plans:
        from shopify.plans import Plans

        return Plans(self.settings.plan_retention_days, self.settings.default_plan)

    @cached_property
    def shops(self) -> ShopStore:
        from shopify.shops import ShopStore

        return ShopStore(self.redis, self.box, self.plans)

    @cached_property
    def oauth(self) -> OAuthClient:
        from shopify.oauth import OAuthClient

        return OAuthClient(
            api_key=self.settings.shopify_api_key,
            api_secret=self.settings.shopify_api_secret,
            admin_base_url=self.settings.shopify_admin_base_url,
        )

    @cached_property
    def tokens(self) -> TokenManager:
        from shopify.tokens import TokenManager

        return TokenManager(self.shops, self.oauth, self.redis)


    @cached_property
    def chat(self) -> ChatStore:
        from chat.store import ChatStore

        return ChatStore(self.redis)

    @cached_property
    def model(self) -> ModelClient | None:
        """The model provider, or None (no OPENAI_API_KEY): the chat then uses its rule responder."""
        if not self.settings.model_enabled:
            return None
        from chat.llm import ModelClient

        return ModelClient(str(self.settings.openai_api_key), self.settings.openai_base_url,
                           self.settings.openai_model, timeout=self.settings.openai_timeout)


def build_services(settings: Settings) -> Services:
    return Services(
        settings=settings,
        redis=make_redis(settings),
        queue_redis=make_queue_redis(settings),
        meili=make_meili(settings),
    )
