"""The full services container every Lumi process uses (web hangs it on the app; jobs build one per worker)."""

from __future__ import annotations

from chat.services import ChatServices
from core.settings import Settings


class Services(ChatServices):
    """Every component of every layer below: core clients, then Shopify's, then chat's (each a subclass)."""


def build_services(settings: Settings) -> Services:
    return Services.from_settings(settings)
