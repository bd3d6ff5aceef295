"""A devshop store's markets: which countries it sells to, in which currency, and at which prices.

Shopify Markets, as far as prices go: a primary market in the shop's base currency, and further markets
with their own currency. A market price is the base price converted at the market's rate and rounded by
the currency's rule (here: up to the next .95, like Shopify's default "x.95" rounding for EUR and USD),
unless the merchant fixed the product's price for that market (a price list), which then applies as is.
Compare-at prices follow the same rule, and a fixed price has no compare-at price.

Every devshop shop has its primary market plus one other (Europe in EUR for a non-EUR shop, the United
States in USD for a EUR shop), and the first product of its catalogue has a fixed price in that market, so
storefront and feed tests see real currency differences. The admin API (`contextualPricing`) and the
storefront pages (`?country=XX`) both price through `market_price`, so they always agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal
from typing import Any

# The country each base currency's primary market sells from (devshop shops have no address).
PRIMARY_COUNTRY = {"USD": "US", "EUR": "FR", "GBP": "GB", "CAD": "CA", "JPY": "JP", "AUD": "AU", "CHF": "CH"}
FIXED_PRICE = Decimal("9.00")  # the fixed market price of the first product, in the market's currency


@dataclass(frozen=True)
class Market:
    id: int
    handle: str
    name: str
    countries: tuple[str, ...]
    currency: str
    rate: Decimal  # market currency per unit of the base currency; 1 for the primary market
    primary: bool = False
    fixed_prices: Mapping[int, Decimal] = field(default_factory=dict)  # product id → price for every variant

    def describe(self) -> dict[str, Any]:
        return {"id": self.id, "handle": self.handle, "name": self.name, "countries": list(self.countries),
                "currency": self.currency, "rate": str(self.rate), "primary": self.primary,
                "fixed_prices": {str(pid): str(price) for pid, price in self.fixed_prices.items()}}


def round_95(amount: Decimal) -> Decimal:
    """Up to the next x.95 (21.34 → 21.95, 21.96 → 22.95, 21.95 stays)."""
    whole = (amount + Decimal("0.05")).to_integral_value(rounding=ROUND_CEILING)
    return whole - Decimal("0.05")


def default_markets(base_currency: str, fixed_product_id: int | None, *, extra: bool = True) -> tuple[Market, ...]:
    base_currency = base_currency.upper()
    primary = Market(1, PRIMARY_COUNTRY.get(base_currency, "US").lower(), "Home",
                     (PRIMARY_COUNTRY.get(base_currency, "US"),), base_currency, Decimal(1), primary=True)
    if not extra:
        return (primary,)
    fixed = {fixed_product_id: FIXED_PRICE} if fixed_product_id is not None else {}
    if base_currency == "EUR":
        other = Market(2, "us", "United States", ("US",), "USD", Decimal("1.08"), fixed_prices=fixed)
    else:
        other = Market(2, "europe", "Europe", ("FR", "DE", "ES", "IT", "NL", "BE"), "EUR", Decimal("0.92"),
                       fixed_prices=fixed)
    return (primary, other)


def market_for_country(markets: tuple[Market, ...], country: str | None) -> Market:
    """The market a shopper in `country` buys in; a country no market covers buys in the primary market."""
    code = (country or "").upper()
    for market in markets:
        if code in market.countries:
            return market
    return next(m for m in markets if m.primary)


def market_price(market: Market, product_id: int, price: Decimal,
                 compare_at: Decimal | None) -> tuple[Decimal, Decimal | None]:
    """A variant's (price, compare-at price) in `market`'s currency."""
    if market.primary:
        return price, compare_at
    fixed = market.fixed_prices.get(product_id)
    if fixed is not None:
        return fixed, None
    converted = round_95(price * market.rate)
    compare = round_95(compare_at * market.rate) if compare_at is not None else None
    if compare is not None and compare <= converted:
        compare = None  # rounding may close a small discount; Shopify then shows no compare-at price
    return converted, compare
