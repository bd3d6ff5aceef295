"""The ground floor of the services container: settings and the clients every Lumi process talks to.

Each package above adds its own components in a subclass (shopify.services, chat.services) and
runtime.services composes the full container; code types against the narrowest one it needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Self

import meilisearch
from redis import Redis

from core.clients import make_meili, make_queue_redis, make_redis
from core.crypto import SecretBox
from core.settings import Settings


@dataclass
class CoreServices:
    settings: Settings
    redis: Redis  # Lumi's own keys, decoded strings
    queue_redis: Redis  # RQ and feed bodies, raw bytes
    meili: meilisearch.Client

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        """Connect every client once (a container per process: web hangs it on the app, jobs build one per worker)."""
        return cls(
            settings=settings,
            redis=make_redis(settings),
            queue_redis=make_queue_redis(settings),
            meili=make_meili(settings),
        )

    def close(self) -> None:
        """Close the pooled Redis connections (a process exiting, a test's app torn down)."""
        self.redis.close()
        self.queue_redis.close()

    @cached_property
    def box(self) -> SecretBox:
        return SecretBox(self.settings.encryption_keys)
