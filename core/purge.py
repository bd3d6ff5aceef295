"""The deletion registry: every store of per-shop data registers how to purge it and what it holds.

Modules register at import. This module is only the mechanism: runtime.data imports every
registering module (so the registry is complete) and runs uninstall, deletion requests,
compliance and the data inventory through it, so a store of data cannot be forgotten by deletion.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from core.services import CoreServices

# Categories a merchant can ask to delete one at a time.
CATEGORIES = ("products", "settings", "chat", "operational")
# The install itself (the shop record with its encrypted tokens): deleted only by a full ("all") deletion,
# an uninstall or shop/redact, never by a per-category request (deleting settings keeps the shop installed).
INSTALL = "install"
ALL_CATEGORIES = (*CATEGORIES, INSTALL)
# What a merchant may name in a deletion request: one category, several, or "all" (uninstall-grade).
ALL = "all"

# A store's purge returns how many items it deleted, or (better) the names of what it deleted: key names,
# document ids, or `key#field` for a part of a key it reset. Receipts digest the names.
PurgeResult = int | Iterable[str]


@dataclass(frozen=True)
class DataStore:
    """One store of per-shop data. Its functions get the process's container and use only the core clients."""

    name: str
    category: str
    description: str
    purge: Callable[[CoreServices, str], PurgeResult]
    inventory: Callable[[CoreServices, str], dict[str, int]]


_REGISTRY: dict[str, DataStore] = {}


def register(store: DataStore) -> None:
    if store.category not in ALL_CATEGORIES:
        raise ValueError(f"unknown category {store.category!r}")
    _REGISTRY[store.name] = store


def expand(categories: Iterable[str] | None) -> tuple[str, ...]:
    """The categories a request names, in registry order ("all" or None: every category, the install too)."""
    wanted = set(categories) if categories is not None else {ALL}
    unknown = wanted - set(ALL_CATEGORIES) - {ALL}
    if unknown:
        raise ValueError(f"unknown categories: {', '.join(sorted(unknown))}")
    if ALL in wanted:
        return ALL_CATEGORIES
    return tuple(c for c in ALL_CATEGORIES if c in wanted)


def stores(categories: Iterable[str] | None = None) -> list[DataStore]:
    """The registered stores in `categories` (default: all); complete only once runtime.data is imported."""
    wanted = set(expand(categories))
    return [store for store in _REGISTRY.values() if store.category in wanted]
