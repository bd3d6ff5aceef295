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


@dataclass(frozen=True)
class DataStore:
    """One store of per-shop data. Its functions get the process's container and use only the core clients."""

    name: str
    category: str
    description: str
    purge: Callable[[CoreServices, str], int]
    inventory: Callable[[CoreServices, str], dict[str, int]]


_REGISTRY: dict[str, DataStore] = {}


def register(store: DataStore) -> None:
    if store.category not in CATEGORIES:
        raise ValueError(f"unknown category {store.category!r}")
    _REGISTRY[store.name] = store


def stores(categories: Iterable[str] | None = None) -> list[DataStore]:
    """The registered stores in `categories` (default: all); complete only once runtime.data is imported."""
    wanted = set(categories) if categories is not None else set(CATEGORIES)
    unknown = wanted - set(CATEGORIES)
    if unknown:
        raise ValueError(f"unknown categories: {', '.join(sorted(unknown))}")
    return [store for store in _REGISTRY.values() if store.category in wanted]
