"""Plans and their chat retention: the one place in code that says how long chat data lives.

Plans are configuration (settings read their default retention from here), so they sit in core.

Shopify Billing is out of scope for now: a shop's plan is the configured default unless the
operator sets one for that shop (`flask --app web lumi set-plan SHOP PLAN`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Plan:
    name: str
    label: str
    retention_days: int

    @property
    def retention_seconds(self) -> int:
        return self.retention_days * 24 * 3600


# Defaults; LUMI_PLAN_RETENTION_DAYS ("free:7,growth:30,pro:90") overrides the days per plan.
DEFAULT_RETENTION_DAYS: dict[str, int] = {"free": 7, "growth": 30, "pro": 90}
LABELS = {"free": "Free", "growth": "Growth", "pro": "Pro"}


class Plans:
    def __init__(self, retention_days: dict[str, int], default: str) -> None:
        if default not in retention_days:
            raise ValueError(f"default plan {default!r} is not one of {sorted(retention_days)}")
        self._plans = {
            name: Plan(name, LABELS.get(name, name.title()), days) for name, days in retention_days.items()
        }
        self.default = default

    def get(self, name: str | None) -> Plan:
        """The named plan, or the default one for a shop without an override (or an unknown name)."""
        return self._plans.get(name or self.default) or self._plans[self.default]

    def names(self) -> list[str]:
        return list(self._plans)

    def __contains__(self, name: object) -> bool:
        return name in self._plans
