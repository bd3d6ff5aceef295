"""Deterministic, lazily generated orders (#1001...) whose line items point at catalogue products.

The first four orders of every shop are fixed support-chat cases (DEMO_ORDERS): #1001-#1003 belong to one demo
customer, #1004 to another; their line items still come from the catalogue like every other order's.

In an orders_recent shop (`make dev`) the demo orders are dated relative to the anchor (the shop's creation, i.e.
now): placed one to five days earlier, with the in-transit parcels' estimated delivery two or three days after it,
so a support chat tried today never sees a past estimate for them. They are then the only orders out of number
order, and the date orderings list them in their place (a sorted list merged with the rest). In the default fixed
past span they keep their place in the schedule, estimates included, like every other order."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache

from devshop.catalogue import Catalogue, Product, Variant, rng_for
from devshop.paging import ListSegment, MonotoneSegment, Segment

ORDER_EPOCH = datetime(2026, 5, 1, tzinfo=UTC)  # orders span the months before the pinned API version
ORDER_STEP_S = 4 * 3600
# orders_recent: orders span the RECENT_SPAN_S before the shop's anchor (its creation time) and favour a few
# steady best sellers (all along) and a few trending products (mostly in the last TRENDING_WINDOW_S).
RECENT_SPAN_S = 60 * 86400
TRENDING_WINDOW_S = 7 * 86400
BEST_SELLER_WEIGHTS = (4, 3, 3)  # relative shares among the steady best sellers
TRENDING_WEIGHTS = (3, 2, 2)
BEST_SELLER_SHARE = 0.2  # of line items, throughout
TRENDING_SHARE = 0.35  # of line items in the last TRENDING_WINDOW_S
TRENDING_TRICKLE = 0.01  # of line items between 7 and 30 days ago
ORDER_ID_BASE = 6_100_000_000_000
LINE_ITEM_ID_BASE = 15_100_000_000_000
FULFILLMENT_ID_BASE = 5_600_000_000_000
CUSTOMER_ID_BASE = 7_700_000_000_000
FIRST_ORDER_NUMBER = 1001

# (company, tracking number pattern, tracking url template)
CARRIERS: tuple[tuple[str, Callable[[object], str], str], ...] = (
    ("UPS", lambda r: "1Z" + "".join(r.choice("0123456789ABCDEFGHJKLMNPRSTUVWXYZ") for _ in range(16)),  # type: ignore[attr-defined]
     "https://www.ups.com/track?tracknum={n}"),
    ("DHL Express", lambda r: str(r.randrange(10**9, 10**10)),  # type: ignore[attr-defined]
     "https://www.dhl.com/en/express/tracking.html?AWB={n}"),
    ("Colissimo", lambda r: f"6A{r.randrange(10**10, 10**11)}",  # type: ignore[attr-defined]
     "https://www.laposte.fr/outils/suivre-vos-envois?code={n}"),
    ("La Poste", lambda r: f"8L{r.randrange(10**10, 10**11)}",  # type: ignore[attr-defined]
     "https://www.laposte.fr/outils/suivre-vos-envois?code={n}"),
    ("USPS", lambda r: "9400" + str(r.randrange(10**17, 10**18)),  # type: ignore[attr-defined]
     "https://tools.usps.com/go/TrackConfirmAction?tLabels={n}"),
    ("FedEx", lambda r: str(r.randrange(10**11, 10**12)),  # type: ignore[attr-defined]
     "https://www.fedex.com/fedextrack/?trknbr={n}"),
    ("DPD", lambda r: str(r.randrange(10**13, 10**14)),  # type: ignore[attr-defined]
     "https://tracking.dpd.de/status/en_US/parcel/{n}"),
)


@dataclass(frozen=True)
class DemoCustomer:
    id: int  # numeric, as in Customer.legacyResourceId and the app proxy's logged_in_customer_id
    email: str
    first_name: str
    last_name: str


@dataclass(frozen=True)
class DemoShipment:
    display_status: str  # FulfillmentDisplayStatus
    company: str  # one of CARRIERS
    number: str

    @property
    def url(self) -> str:
        return next(template for company, _, template in CARRIERS if company == self.company).format(n=self.number)


@dataclass(frozen=True)
class DemoOrder:
    """A fixed order every shop has (when it has that many orders): who placed it and how far it has got."""

    number: int  # OrderBook index: #1001 is 1
    customer: DemoCustomer
    financial_status: str
    fulfillment_status: str
    shipment: DemoShipment | None  # one fulfillment (all line items but the last when PARTIALLY_FULFILLED)
    case: str  # what a support chat should be able to say about it
    placed_before: timedelta  # orders_recent: created this long before the anchor
    eta_after: timedelta | None = None  # orders_recent: the parcel's estimated delivery this long after the anchor

    @property
    def name(self) -> str:
        return f"#{FIRST_ORDER_NUMBER + self.number - 1}"


# Outside the generated customers' CUSTOMER_ID_BASE + 0..count//2 in any shop under ~850,000 orders, and generated
# orders skip these two ids in bigger ones, so the demo customer has exactly the demo orders.
DEMO_CUSTOMER_ID = CUSTOMER_ID_BASE + 424_242
OTHER_CUSTOMER_ID = CUSTOMER_ID_BASE + 424_243
DEMO_CUSTOMER = DemoCustomer(DEMO_CUSTOMER_ID, "shopper@example.com", "Sam", "Shopper")
OTHER_CUSTOMER = DemoCustomer(OTHER_CUSTOMER_ID, "other@example.com", "Olive", "Other")
DEMO_ORDERS: dict[str, DemoOrder] = {order.name: order for order in (
    DemoOrder(1, DEMO_CUSTOMER, "PAID", "FULFILLED", DemoShipment("IN_TRANSIT", "UPS", "1Z999AA10123456784"),
              "shipped, in transit with UPS: tracking link and estimated delivery",
              timedelta(days=5, hours=3, minutes=17, seconds=11), timedelta(days=2, hours=6)),
    DemoOrder(2, DEMO_CUSTOMER, "PAID", "PARTIALLY_FULFILLED", DemoShipment("IN_TRANSIT", "DHL Express", "3318810025"),
              "partly shipped: one parcel in transit with DHL Express, the last line item not shipped yet",
              timedelta(days=3, hours=20, minutes=41, seconds=37), timedelta(days=3, hours=2)),
    DemoOrder(3, DEMO_CUSTOMER, "PAID", "UNFULFILLED", None, "paid, not shipped yet",
              timedelta(days=1, hours=4, minutes=8, seconds=53)),
    DemoOrder(4, OTHER_CUSTOMER, "PAID", "FULFILLED", DemoShipment("IN_TRANSIT", "USPS", "9400111899223344556677"),
              "another customer's order: in transit with USPS",
              timedelta(days=4, hours=9, minutes=2, seconds=29), timedelta(days=2, hours=20)),
)}
_DEMO_BY_NUMBER = {order.number: order for order in DEMO_ORDERS.values()}
_DEMO_CUSTOMER_IDS = {order.customer.id for order in DEMO_ORDERS.values()}

FIRST_NAMES = ("Camille", "Léa", "Hugo", "Yuki", "Sofia", "Noah", "Amara", "Jonas", "Chloé", "Mateo", "Aiko", "Emma")
LAST_NAMES = ("Martin", "Dubois", "Tanaka", "García", "Müller", "Okafor", "Rossi", "Nguyen", "Smith", "Bernard")


@dataclass(frozen=True)
class TrackingInfo:
    company: str | None
    number: str | None
    url: str | None


@dataclass(frozen=True)
class LineItem:
    id: int
    product_index: int | None
    variant_id: int | None
    title: str
    variant_title: str | None
    vendor: str | None
    sku: str | None
    quantity: int
    unit_price: Decimal
    fulfilled_quantity: int


@dataclass(frozen=True)
class Fulfillment:
    id: int
    name: str
    status: str
    display_status: str | None
    created_at: datetime
    updated_at: datetime
    in_transit_at: datetime | None
    estimated_delivery_at: datetime | None
    delivered_at: datetime | None
    tracking: tuple[TrackingInfo, ...]
    line_item_ids: tuple[int, ...]


@dataclass(frozen=True)
class Order:
    number: int  # 1-based generator index
    id: int
    name: str
    email: str
    phone: str | None
    customer_id: int
    customer_first: str
    customer_last: str
    created_at: datetime
    processed_at: datetime
    updated_at: datetime
    cancelled_at: datetime | None
    cancel_reason: str | None
    closed_at: datetime | None
    financial_status: str
    fulfillment_status: str
    currency: str
    line_items: tuple[LineItem, ...]
    fulfillments: tuple[Fulfillment, ...]
    shipping: Decimal
    tax: Decimal
    refunded: Decimal
    tags: tuple[str, ...]
    note: str | None
    test: bool

    @property
    def subtotal(self) -> Decimal:
        return sum((li.unit_price * li.quantity for li in self.line_items), Decimal("0"))

    @property
    def total(self) -> Decimal:
        return self.subtotal + self.shipping + self.tax


# What the mix of orders looks like (weights): each a support-chat case worth having.
SCENARIOS = (
    ("unfulfilled", 28), ("partial", 10), ("in_transit", 22), ("delivered", 20), ("out_for_delivery", 4),
    ("attempted_delivery", 2), ("label_printed", 3), ("marked_fulfilled", 3), ("cancelled", 5), ("refunded", 3),
)


class OrderBook:
    """A shop's orders; order n is generated from (seed, n) when first looked at."""

    def __init__(self, seed: int, count: int, catalogue: Catalogue, currency: str, shop_domain: str,
                 recent: bool = False, anchor: datetime | None = None) -> None:
        self.seed = seed
        self.count = count
        self.catalogue = catalogue
        self.currency = currency
        self.shop_domain = shop_domain
        self.recent = recent
        # Default: every 4 hours from ORDER_EPOCH. Recent: evenly over the 60 days before the anchor.
        self.anchor = (anchor or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0) if recent else None
        self.step_s = max(RECENT_SPAN_S // max(count, 1), 1) if recent else ORDER_STEP_S
        self.start = self.anchor - timedelta(seconds=self.step_s * max(count, 1)) if self.anchor else ORDER_EPOCH
        self.get = lru_cache(maxsize=4096)(self._generate)
        self._sorted: dict[str, list[tuple[tuple, int]]] = {}
        self._popular: tuple[tuple[int, ...], tuple[int, ...]] | None = None

    def order(self, number: int) -> Order | None:
        return self.get(number) if 1 <= number <= self.count else None

    def index_of(self, order_id: int) -> int | None:
        number = order_id - ORDER_ID_BASE
        return number if 1 <= number <= self.count else None

    def number_of(self, name: str) -> int | None:
        """The order number (1-based index) an order name such as "#1001" or "1001" stands for, if in this shop."""
        digits = name.strip().lstrip("#")
        number = int(digits) - FIRST_ORDER_NUMBER + 1 if digits.isdigit() else 0
        return number if 1 <= number <= self.count else None

    def demo_numbers_of(self, customer_id: int) -> tuple[int, ...] | None:
        """The orders of a demo customer (all of them: generated orders never use those ids); None for others."""
        if customer_id not in _DEMO_CUSTOMER_IDS:
            return None
        return tuple(d.number for d in DEMO_ORDERS.values() if d.customer.id == customer_id and d.number <= self.count)

    def segments(self, sort_key: str, only: Collection[int] | None = None) -> list[Segment]:
        """The orders in `sort_key` order; `only`: just those numbers (a search that pins its orders), so a lookup
        by name does not generate every order of a large shop."""
        # Creation, processing and update times all grow with the order number (but for redated demo orders).
        monotone: dict[str, Callable[[int], tuple]] = {
            "ID": lambda n: (ORDER_ID_BASE + n, ORDER_ID_BASE + n),
            "ORDER_NUMBER": lambda n: (n, ORDER_ID_BASE + n),
            "CREATED_AT": lambda n: (_iso(self.get(n).created_at), ORDER_ID_BASE + n),
            "PROCESSED_AT": lambda n: (_iso(self.get(n).processed_at), ORDER_ID_BASE + n),
            "UPDATED_AT": lambda n: (_iso(self.get(n).updated_at), ORDER_ID_BASE + n),
            "RELEVANCE": lambda n: (ORDER_ID_BASE + n, ORDER_ID_BASE + n),
        }
        if sort_key in monotone:
            key = monotone[sort_key]
            if only is not None:
                return [ListSegment(sorted((key(n), n) for n in set(only) if 1 <= n <= self.count))]
            redated = self.redated_numbers() if sort_key in ("CREATED_AT", "PROCESSED_AT", "UPDATED_AT") else ()
            if not redated:
                return [MonotoneSegment(1, self.count, key, lambda n: False)]

            def bisect_key(n: int) -> tuple:
                # A redated order is skipped by the walk; bisection still reads its key, so it gets the time
                # the schedule had for it, which lies between its neighbours' creation and update times.
                return (_iso(self._scheduled(n)), ORDER_ID_BASE + n) if n in redated else key(n)

            return [MonotoneSegment(1, self.count, bisect_key, lambda n: n in redated),
                    ListSegment(sorted((key(n), n) for n in redated))]
        if sort_key not in self._sorted:
            value: Callable[[Order], object] = {
                "TOTAL_PRICE": lambda o: f"{o.total:020.2f}",
                "CUSTOMER_NAME": lambda o: f"{o.customer_first} {o.customer_last}".casefold(),
                "FINANCIAL_STATUS": lambda o: o.financial_status,
                "FULFILLMENT_STATUS": lambda o: o.fulfillment_status,
                "TOTAL_ITEMS_QUANTITY": lambda o: sum(li.quantity for li in o.line_items),
            }.get(sort_key, lambda o: o.id)
            self._sorted[sort_key] = sorted(((value(self.get(n)), ORDER_ID_BASE + n), n)
                                            for n in range(1, self.count + 1))
        if only is not None:
            wanted = set(only)
            return [ListSegment([entry for entry in self._sorted[sort_key] if entry[1] in wanted])]
        return [ListSegment(self._sorted[sort_key])]

    def redated_numbers(self) -> frozenset[int]:
        """The demo orders dated relative to the anchor instead of by the schedule (orders_recent only)."""
        if self.anchor is None:
            return frozenset()
        return frozenset(n for n in _DEMO_BY_NUMBER if n <= self.count)

    def _scheduled(self, n: int) -> datetime:
        """Order n's creation time by the schedule: the first draw of its stream, as _generate makes it."""
        step = self.step_s
        return self.start + timedelta(seconds=(n - 1) * step + rng_for(self.seed, "order", n).randrange(
            max(step // 2, 1)))

    @staticmethod
    def _sellable(product: Product | None) -> bool:
        return bool(product and product.status == "ACTIVE" and product.published_at and product.variants)

    def popular(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(steady best sellers, trending) product indexes for orders_recent, drawn once from the seed among
        sellable products (in-stock ones first); empty when the catalogue has none."""
        if self._popular is None:
            cat = self.catalogue
            rng = rng_for(self.seed, "popular")
            candidates = rng.sample(range(1, cat.size + 1), min(cat.size, 200))
            sellable = [i for i in candidates if self._sellable(cat.product(i))]
            in_stock = [i for i in sellable
                        if any(v.available_for_sale for v in cat.product(i).variants)]  # type: ignore[union-attr]
            ranked = in_stock + [i for i in sellable if i not in in_stock]
            best = tuple(ranked[:len(BEST_SELLER_WEIGHTS)])
            trending = tuple(ranked[len(best):len(best) + len(TRENDING_WEIGHTS)])
            self._popular = (best, trending)
        return self._popular

    def _pick_recent(self, rng: object, created: datetime) -> tuple[Product, Variant] | None:
        assert self.anchor is not None
        age = (self.anchor - created).total_seconds()
        trending_share = TRENDING_SHARE if age <= TRENDING_WINDOW_S else TRENDING_TRICKLE if age <= 30 * 86400 else 0
        best, trending = self.popular()
        roll = rng.random()  # type: ignore[attr-defined]
        group: tuple[int, ...] = ()
        weights: tuple[int, ...] = ()
        if roll < BEST_SELLER_SHARE:
            group, weights = best, BEST_SELLER_WEIGHTS[:len(best)]
        elif roll < BEST_SELLER_SHARE + trending_share:
            group, weights = trending, TRENDING_WEIGHTS[:len(trending)]
        if group:
            product = self.catalogue.product(rng.choices(group, weights=weights)[0])  # type: ignore[attr-defined]
            if product is not None and self._sellable(product):  # still sellable after mutations
                return product, product.variants[rng.randrange(len(product.variants))]  # type: ignore[attr-defined]
        hot = set(best) | set(trending)
        for _ in range(12):  # the long tail
            picked = self._pick_product(rng)
            if picked is None or picked[0].index not in hot:
                return picked
        return None

    def _pick_product(self, rng: object) -> tuple[Product, Variant] | None:
        cat = self.catalogue
        for _ in range(12):  # prefer products a shopper could actually have bought
            index = rng.randint(1, max(cat.size, 1))  # type: ignore[attr-defined]
            product = cat.product(index)
            if product and product.status == "ACTIVE" and product.published_at and product.variants:
                return product, product.variants[rng.randrange(len(product.variants))]  # type: ignore[attr-defined]
        return None

    def _generate(self, n: int) -> Order:
        rng = rng_for(self.seed, "order", n)
        step = self.step_s
        created = self.start + timedelta(seconds=(n - 1) * step + rng.randrange(max(step // 2, 1)))
        scenario = rng.choices([s for s, _ in SCENARIOS], weights=[w for _, w in SCENARIOS])[0]
        demo = _DEMO_BY_NUMBER.get(n)
        if demo is not None:  # its own case, whatever the draw (drawn anyway: the rest of the stream is unchanged)
            scenario = "demo"
            if self.anchor is not None:
                created = self.anchor - demo.placed_before
        elif self.anchor is not None:  # nothing happens after the anchor: young orders have not got far yet
            age = self.anchor - created
            if age < timedelta(days=3):
                scenario = "unfulfilled"
            elif age < timedelta(days=8) and scenario in ("delivered", "refunded", "partial", "out_for_delivery",
                                                          "attempted_delivery"):
                scenario = "in_transit"
        n_items = rng.choices((1, 2, 3, 4, 5), weights=(45, 25, 15, 10, 5))[0]
        if scenario == "partial":
            n_items = max(n_items, 3)
        elif demo is not None and demo.fulfillment_status == "PARTIALLY_FULFILLED":
            n_items = max(n_items, 2)  # something shipped, something not
        items: list[LineItem] = []
        for k in range(n_items):
            picked = self._pick_recent(rng, created) if self.recent else self._pick_product(rng)
            line_id = LINE_ITEM_ID_BASE + n * 16 + k
            qty = rng.choices((1, 2, 3, 5), weights=(70, 20, 7, 3))[0]
            if picked is None:  # an empty or all-draft catalogue: a custom line item
                items.append(LineItem(line_id, None, None, "Custom item", None, None, None, qty, Decimal("10.00"), 0))
                continue
            product, variant = picked
            items.append(LineItem(
                id=line_id, product_index=product.index, variant_id=variant.id, title=product.title,
                variant_title=None if variant.title == "Default Title" else variant.title, vendor=product.vendor,
                sku=variant.sku, quantity=qty, unit_price=variant.price, fulfilled_quantity=0,
            ))
        fulfillments: list[Fulfillment] = []
        financial, fulfillment_status = "PAID", "UNFULFILLED"
        cancelled_at = cancel_reason = None
        refunded = Decimal("0")
        updated = created + timedelta(minutes=5)

        def ship(k: int, covered: list[LineItem], display: str, days_ago: int,
                 fixed: DemoShipment | None = None) -> None:
            nonlocal updated
            carrier, pattern, url = CARRIERS[rng.randrange(len(CARRIERS))]
            at = created + timedelta(hours=rng.randint(4, 48) + 24 * days_ago)
            number = pattern(rng)
            tracking: tuple[TrackingInfo, ...] = (TrackingInfo(carrier, number, url.format(n=number)),)
            if fixed is not None:
                tracking = (TrackingInfo(fixed.company, fixed.number, fixed.url),)
            elif display == "MARKED_AS_FULFILLED":
                tracking = ()
            elif rng.random() < 0.08:  # carrier known, no tracking page
                tracking = (TrackingInfo(carrier, number, None),)
            in_transit = at + timedelta(hours=rng.randint(2, 20)) if display in (
                "IN_TRANSIT", "OUT_FOR_DELIVERY", "ATTEMPTED_DELIVERY", "DELIVERED") else None
            eta = (at + timedelta(days=rng.randint(2, 6))) if display not in ("MARKED_AS_FULFILLED",) else None
            delivered = None
            if display == "DELIVERED" and in_transit:
                delivered = in_transit + timedelta(days=rng.randint(1, 4))
            last = max(t for t in (at, in_transit, delivered) if t is not None)
            updated = max(updated, last)
            fulfillments.append(Fulfillment(
                id=FULFILLMENT_ID_BASE + n * 8 + k, name=f"#{FIRST_ORDER_NUMBER + n - 1}-F{k}", status="SUCCESS",
                display_status=display, created_at=at, updated_at=last, in_transit_at=in_transit,
                estimated_delivery_at=eta if display != "DELIVERED" else eta, delivered_at=delivered,
                tracking=tracking, line_item_ids=tuple(li.id for li in covered),
            ))

        if demo is not None:
            if demo.shipment is not None:
                shipped = items if demo.fulfillment_status == "FULFILLED" else items[:-1]
                ship(1, shipped, demo.shipment.display_status, 0, fixed=demo.shipment)
                if self.anchor is not None:
                    fulfillments[-1] = _redated(fulfillments[-1], demo, created, self.anchor)
                    updated = fulfillments[-1].updated_at
            fulfillment_status, financial = demo.fulfillment_status, demo.financial_status
        elif scenario == "partial":
            ship(1, items[:1], "DELIVERED", 0)
            ship(2, items[1:2], "IN_TRANSIT", 2)
            fulfillment_status = "PARTIALLY_FULFILLED"
        elif scenario in ("in_transit", "delivered", "out_for_delivery", "attempted_delivery",
                          "label_printed", "marked_fulfilled"):
            display = {"in_transit": "IN_TRANSIT", "delivered": "DELIVERED", "out_for_delivery": "OUT_FOR_DELIVERY",
                       "attempted_delivery": "ATTEMPTED_DELIVERY", "label_printed": "LABEL_PRINTED",
                       "marked_fulfilled": "MARKED_AS_FULFILLED"}[scenario]
            ship(1, items, display, 0)
            fulfillment_status = "FULFILLED"
        elif scenario == "cancelled":
            cancelled_at = created + timedelta(hours=rng.randint(1, 30))
            cancel_reason = rng.choice(("CUSTOMER", "INVENTORY", "FRAUD", "DECLINED"))
            financial = rng.choice(("REFUNDED", "VOIDED"))
            updated = cancelled_at
        elif scenario == "refunded":
            ship(1, items, "DELIVERED", 0)
            fulfillment_status = "FULFILLED"
            financial = rng.choice(("REFUNDED", "PARTIALLY_REFUNDED"))
        elif rng.random() < 0.1:
            financial = rng.choice(("PENDING", "AUTHORIZED"))
        covered = {i for f in fulfillments for i in f.line_item_ids}
        items = [LineItem(**{**vars(li), "fulfilled_quantity": li.quantity if li.id in covered else 0})
                 for li in items]
        shipping = Decimal(rng.choice(("0.00", "4.90", "6.90", "12.00")))
        subtotal = sum((li.unit_price * li.quantity for li in items), Decimal("0"))
        tax = (subtotal * Decimal("0.2")).quantize(Decimal("0.01"))
        if financial == "REFUNDED":
            refunded = subtotal + shipping + tax
        elif financial == "PARTIALLY_REFUNDED":
            refunded = items[0].unit_price
        if financial == "REFUNDED" and cancelled_at is None:
            updated = max(updated, created + timedelta(days=10))
        # Keep updatedAt strictly increasing with n so UPDATED_AT is a bisectable order too.
        updated = min(updated, created + timedelta(days=20))
        if self.anchor is None:
            updated = created + timedelta(days=20) + (updated - created) / 1000
        elif demo is not None:  # dated by the anchor, not by the schedule: its own times, all before the anchor
            pass
        else:  # squeeze into less than the gap between two orders, so it stays before the anchor too
            updated = created + (updated - created) * (max(step // 2 - 1, 0) / (20 * 86400))
        customer = rng.randrange(max(self.count // 2, 1))
        if CUSTOMER_ID_BASE + customer in _DEMO_CUSTOMER_IDS:  # only in shops of ~850,000 orders and more
            customer += len(_DEMO_CUSTOMER_IDS)
        first, last = FIRST_NAMES[customer % len(FIRST_NAMES)], LAST_NAMES[(customer // 7) % len(LAST_NAMES)]
        customer_id, email = CUSTOMER_ID_BASE + customer, f"buyer{FIRST_ORDER_NUMBER + n - 1}@example.com"
        phone = None if rng.random() < 0.6 else f"+3361234{n % 10000:04d}"
        if demo is not None:
            person = demo.customer
            customer_id, email, first, last, phone = person.id, person.email, person.first_name, person.last_name, None
        closed = fulfillment_status == "FULFILLED" and financial in ("PAID", "REFUNDED", "PARTIALLY_REFUNDED")
        return Order(
            number=n, id=ORDER_ID_BASE + n, name=f"#{FIRST_ORDER_NUMBER + n - 1}",
            email=email, phone=phone, customer_id=customer_id, customer_first=first, customer_last=last,
            created_at=created, processed_at=created, updated_at=updated.replace(microsecond=0),
            cancelled_at=cancelled_at, cancel_reason=cancel_reason,
            closed_at=updated.replace(microsecond=0) if closed or cancelled_at else None,
            financial_status=financial, fulfillment_status=fulfillment_status, currency=self.currency,
            line_items=tuple(items), fulfillments=tuple(fulfillments), shipping=shipping, tax=tax,
            refunded=refunded,
            tags=tuple(sorted(rng.sample(("gift", "wholesale", "vip", "repeat"), rng.randint(0, 2)))),
            note=None if rng.random() < 0.85 else "Please leave the parcel with the concierge.",
            test=rng.random() < 0.02 and demo is None,
        )


def _redated(fulfillment: Fulfillment, demo: DemoOrder, created: datetime, anchor: datetime) -> Fulfillment:
    """A demo order's parcel in an orders_recent shop: shipped a day after the order, in transit since shortly after,
    due demo.eta_after past the anchor (so in the future while the anchor is about now)."""
    shipped = created + timedelta(hours=22)
    in_transit = shipped + timedelta(hours=7) if fulfillment.in_transit_at is not None else None
    eta = anchor + demo.eta_after if demo.eta_after is not None else fulfillment.estimated_delivery_at
    last = max(t for t in (shipped, in_transit) if t is not None)
    return replace(fulfillment, created_at=shipped, updated_at=last, in_transit_at=in_transit,
                   estimated_delivery_at=eta, delivered_at=None)


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
