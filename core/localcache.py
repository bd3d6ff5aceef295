"""A small in-process LRU with an age bound, shared by the threads of one web worker.

The feed hot path keeps its answers here, keyed by everything that decides them *including* the shop's
settings stamp and index version, which it reads from Redis on every request (one pipelined round trip).
An entry is therefore never served after a change: a change makes its key unreachable, like the Redis
body cache. The age bound only limits how long an unreachable entry occupies memory.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class LocalCache(Generic[V]):
    def __init__(self, max_entries: int, max_age: float) -> None:
        self.max_entries = max_entries
        self.max_age = max_age
        self._items: OrderedDict[Hashable, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, max_age: float | None = None) -> V | None:
        limit = self.max_age if max_age is None else max_age
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return None
            if time.monotonic() - found[0] > limit:
                if limit >= self.max_age:
                    del self._items[key]
                return None
            self._items.move_to_end(key)
            return found[1]

    def put(self, key: Hashable, value: V) -> None:
        with self._lock:
            self._items[key] = (time.monotonic(), value)
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def discard_prefix(self, first: Hashable) -> None:
        """Drop every entry whose key is a tuple starting with `first` (e.g. a shop that was purged)."""
        with self._lock:
            for key in [k for k in self._items if isinstance(k, tuple) and k and k[0] == first]:
                del self._items[key]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
