"""The chat layer's components on top of the Shopify ones: the session store and the model client."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from chat.store import ChatStore
from shopify.services import ShopifyServices

if TYPE_CHECKING:  # imported when first used: a process that never calls a model never loads the SDK
    from chat.llm import ModelClient


class ChatServices(ShopifyServices):
    @cached_property
    def chat(self) -> ChatStore:
        return ChatStore(self.redis, self.box, self.settings.shopify_api_secret)

    @cached_property
    def model(self) -> ModelClient | None:
        """The model provider, or None (no OPENAI_API_KEY): the chat then uses its rule responder."""
        if not self.settings.model_enabled:
            return None
        from chat.llm import ModelClient

        return ModelClient(str(self.settings.openai_api_key), self.settings.openai_base_url,
                           self.settings.openai_model, timeout=self.settings.openai_timeout)

    def close(self) -> None:
        model = self.__dict__.get("model")  # built on first use only
        if model is not None:
            model.close()
        super().close()
