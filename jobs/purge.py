"""Purge jobs: everything an uninstalled shop left behind, through the deletion registry."""

from __future__ import annotations

import logging
from typing import Any

from jobs.context import services
from runtime.data import purge_shop

log = logging.getLogger(__name__)

# On uninstall, chat data follows its retention (it expires by TTL) unless shop/redact comes first.
UNINSTALL_CATEGORIES = ("products", "settings", "operational", "install")


def purge_uninstalled_shop(shop: str) -> dict[str, Any]:
    ctx = services()
    if ctx.shops.is_installed(shop):
        # Reinstalled before the job ran: nothing to purge (the new install owns its data).
        log.info("purge skipped: shop was reinstalled", extra={"shop": shop})
        return {"skipped": "reinstalled"}
    return purge_shop(ctx, shop, categories=UNINSTALL_CATEGORIES, reason="app_uninstalled")
