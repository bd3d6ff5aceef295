"""Injected failures: the next n GraphQL requests (5xx, slow, dropped) and the next n bulk operations."""

from __future__ import annotations

import threading
from dataclasses import dataclass

KINDS = {
    # kind -> (HTTP status, Shopify-style error body) for the ones that answer at all
    "http_500": (500, "Internal Server Error"),
    "http_502": (502, "Bad Gateway"),
    "http_503": (503, "Service Unavailable"),
    "timeout": (200, ""),
    "drop": (0, ""),
    # The next bulk operation fails midway (INTERNAL_SERVER_ERROR, with a partialDataUrl); GraphQL requests
    # never consume it.
    "bulk_fail": (0, ""),
}
BULK_KINDS = frozenset({"bulk_fail"})
DEFAULT_TIMEOUT_SECONDS = 30.0


@dataclass
class Fault:
    kind: str
    remaining: int
    shop: str | None = None
    seconds: float = DEFAULT_TIMEOUT_SECONDS
    after: int | None = None  # bulk_fail: root objects written before failing (None: about half of them)

    @property
    def status(self) -> int:
        return KINDS[self.kind][0]

    @property
    def message(self) -> str:
        return KINDS[self.kind][1]

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"kind": self.kind, "count": self.remaining, "shop": self.shop,
                                  "seconds": self.seconds}
        if self.kind in BULK_KINDS:
            out["after"] = self.after
        return out


class FaultInjector:
    """A queue of armed faults; each GraphQL request consumes at most one, oldest first."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def arm(self, kind: str, count: int = 1, shop: str | None = None, seconds: float | None = None,
            after: int | None = None) -> Fault:
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(KINDS)}")
        if count < 1:
            raise ValueError("count must be >= 1")
        if after is not None and (isinstance(after, bool) or not isinstance(after, int) or after < 0):
            raise ValueError("after must be an integer >= 0 (root objects written before the bulk operation fails)")
        fault = Fault(kind, count, shop.lower() if shop else None,
                      DEFAULT_TIMEOUT_SECONDS if seconds is None else float(seconds), after)
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, shop: str, bulk: bool = False) -> Fault | None:
        """The oldest fault armed for this shop: a request fault, or with `bulk` a bulk-operation one."""
        with self._lock:
            for fault in self._faults:
                if fault.shop in (None, shop) and (fault.kind in BULK_KINDS) == bulk:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return Fault(fault.kind, 1, fault.shop, fault.seconds, fault.after)
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[dict[str, object]]:
        with self._lock:
            return [f.as_dict() for f in self._faults]
