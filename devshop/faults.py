"""Injected failures for the next n GraphQL requests: 5xx answers, slow answers, dropped connections."""

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
}
DEFAULT_TIMEOUT_SECONDS = 30.0


@dataclass
class Fault:
    kind: str
    remaining: int
    shop: str | None = None
    seconds: float = DEFAULT_TIMEOUT_SECONDS

    @property
    def status(self) -> int:
        return KINDS[self.kind][0]

    @property
    def message(self) -> str:
        return KINDS[self.kind][1]

    def as_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "count": self.remaining, "shop": self.shop, "seconds": self.seconds}


class FaultInjector:
    """A queue of armed faults; each GraphQL request consumes at most one, oldest first."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def arm(self, kind: str, count: int = 1, shop: str | None = None, seconds: float | None = None) -> Fault:
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(KINDS)}")
        if count < 1:
            raise ValueError("count must be >= 1")
        fault = Fault(kind, count, shop.lower() if shop else None,
                      DEFAULT_TIMEOUT_SECONDS if seconds is None else float(seconds))
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, shop: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.shop in (None, shop):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return Fault(fault.kind, 1, fault.shop, fault.seconds)
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[dict[str, object]]:
        with self._lock:
            return [f.as_dict() for f in self._faults]
