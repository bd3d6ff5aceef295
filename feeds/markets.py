"""The shop's markets as feeds see them: which price a shopper in each country is shown, and in which currency.

A *pricing zone* decides the price on a card: either the shop's own prices (key `base`: the primary market in
the shop's currency, and every country no market covers), or a market and the currency its countries pay in
(key `<market handle>:<CUR>`), priced by Shopify's `contextualPricing` for one of those countries (all the
countries of a zone pay the same). The catalogue sync reads the markets (`shopify.queries.MARKETS_PAGE`),
stores this map in the shop's index state in Redis, and indexes every product's card price per zone
(`feeds.documents`); a feed request's `?country=` picks the zone.

When the markets could not be read (a shop that has not granted `read_markets` yet, or indexed before this
existed) the map is unknown: a request naming a country then gets no price at all rather than the base price
in a currency that may not be the shopper's.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis

from core import keys
from core.localcache import LocalCache

log = logging.getLogger(__name__)

BASE = "base"
STATE_FIELD = "markets"  # the field of the shop's index state (core.keys.index_state) that holds the map


@dataclass(frozen=True)
class Zone:
    key: str  # BASE or "<market handle>:<CUR>"
    currency: str | None  # None only for the base zone of a shop whose currency is not known yet
    country: str | None = None  # the country contextualPricing is asked for; None for the base zone


@dataclass(frozen=True)
class MarketMap:
    currency: str  # the shop's own currency (the base zone's)
    zones: Mapping[str, Zone] = field(default_factory=dict)  # the zones priced by contextualPricing, by key
    countries: Mapping[str, str] = field(default_factory=dict)  # country → zone key, for countries not at base

    @property
    def base(self) -> Zone:
        return Zone(BASE, self.currency)

    def zone_for(self, country: str | None) -> Zone:
        """The zone of a shopper in `country` (None: no country given, the shop's own prices)."""
        key = self.countries.get(country or "")
        return self.zones[key] if key is not None and key in self.zones else self.base

    def priced(self) -> tuple[Zone, ...]:
        """The zones whose prices the catalogue sync asks Shopify for, in a stable order."""
        return tuple(self.zones[key] for key in sorted(self.zones))

    def pricing_countries(self) -> tuple[str, ...]:
        return tuple(sorted(zone.country for zone in self.priced() if zone.country))

    def to_json(self) -> str:
        return json.dumps({"currency": self.currency,
                           "zones": {k: [z.currency, z.country] for k, z in sorted(self.zones.items())},
                           "countries": dict(sorted(self.countries.items()))}, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str) -> MarketMap:
        data = json.loads(raw)
        zones = {key: Zone(key, currency, country) for key, (currency, country) in data["zones"].items()}
        return cls(data["currency"], zones, dict(data["countries"]))


def _currency(node: Mapping[str, Any] | None) -> str | None:
    code = (node or {}).get("currencyCode")
    return str(code) if code else None


def from_admin(shop_currency: str, markets: Iterable[Mapping[str, Any]]) -> MarketMap:
    """The map from the Admin API's markets (MARKETS_PAGE nodes) and the shop's currency.

    Disabled markets are left out (their countries buy in the primary market). A country of the primary
    market paying in the shop's currency is priced at base; every other (market, currency) pair is a zone,
    priced through its first listed country. A market without a `primary` flag (newer API versions drop the
    concept) simply has all its countries priced by Shopify, which is never wrong, only more queries.
    """
    zones: dict[str, Zone] = {}
    countries: dict[str, str] = {}
    for market in markets:
        if market.get("enabled") is False:
            continue
        settings = market.get("currencySettings") or {}
        market_currency = _currency(settings.get("baseCurrency")) or shop_currency
        regions = market.get("regions") or {}
        nodes = regions.get("nodes") if "nodes" in regions else [e["node"] for e in regions.get("edges", [])]
        for region in nodes or []:
            code = region.get("code")
            if not code:
                continue  # not a country (other region kinds have no code)
            currency = _currency(region.get("currency")) or market_currency
            if market.get("primary") and currency == shop_currency:
                continue
            key = f"{market['handle']}:{currency}"
            zones.setdefault(key, Zone(key, currency, code))
            countries.setdefault(code, key)
    return MarketMap(shop_currency, zones, countries)


def save(client: redis.Redis, shop: str, market_map: MarketMap | None) -> None:
    """Store the map in the shop's index state (None: the markets are unknown). It expires with the state."""
    state = keys.index_state(shop)
    with client.pipeline() as pipe:
        if market_map is None:
            pipe.hdel(state, STATE_FIELD)
        else:
            pipe.hset(state, STATE_FIELD, market_map.to_json())
        pipe.expire(state, keys.JOB_RECORD_TTL)
        pipe.execute()


def stored(client: redis.Redis, shop: str) -> MarketMap | None:
    """The stored map (one Redis read), or None when the markets are unknown."""
    raw = client.hget(keys.index_state(shop), STATE_FIELD)
    if not raw:
        return None
    try:
        return MarketMap.from_json(raw if isinstance(raw, str) else raw.decode())
    except (ValueError, KeyError, TypeError):
        log.warning("unreadable market map", extra={"shop": shop})
        return None


# Per web worker: (shop, shop stamp, index version) → map. The sync bumps the index version right after storing a
# new map, and a reinstall changes the stamp (the index version may start again from 0), so a cached map is never
# used past a change; reading it costs a Redis round trip only when a feed body is computed under new versions
# (never on the cache-hit paths).
_maps: LocalCache[tuple[MarketMap | None]] = LocalCache(4096, 3600.0)


def for_feeds(client: redis.Redis, shop: str, versions: tuple[str, int] | None) -> MarketMap | None:
    """The map feeds price with, cached per (settings stamp, index version); `versions` None means Redis is down:
    the last map this process saw for the shop (None if it saw none)."""
    if versions is None:  # shop_state found Redis down: do not wait for it again
        last = _maps.get((shop, "last"))
        return last[0] if last is not None else None
    found = _maps.get((shop, *versions))
    if found is not None:
        return found[0]
    try:
        market_map = stored(client, shop)
    except redis.RedisError:
        last = _maps.get((shop, "last"))
        return last[0] if last is not None else None
    _maps.put((shop, *versions), (market_map,))
    _maps.put((shop, "last"), (market_map,))
    return market_map


def forget(shop: str) -> None:
    """Drop this process's copies (the shop was purged)."""
    _maps.discard_prefix(shop)
