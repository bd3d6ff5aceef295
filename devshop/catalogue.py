"""Deterministic, lazy product catalogue: product i is generated from (seed, i) on demand."""

from __future__ import annotations

import hashlib
import random
import threading
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache

from devshop.paging import ListSegment, MonotoneSegment, Segment

# Every generated date hangs off this fixed epoch so output is reproducible run to run.
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
CATALOGUE_SPAN_S = 730 * 86400  # products are created over two years after EPOCH
UPDATE_LAG_S = 7 * 86400

# Numeric ids look like Shopify's (13-14 digits) and encode the product index, so any id
# maps back to its generator input in O(1).
PRODUCT_ID_BASE = 8_100_000_000_000
VARIANT_ID_BASE = 45_100_000_000_000
INVENTORY_ITEM_ID_BASE = 47_100_000_000_000
MEDIA_ID_BASE = 31_100_000_000_000
OPTION_ID_BASE = 10_100_000_000_000
COLLECTION_ID_BASE = 450_000_000_000
LOCATION_ID = 71_234_567_890
VARIANT_SLOTS = 128  # > Shopify's classic 100-variant cap
MEDIA_SLOTS = 16
OPTION_SLOTS = 4

MAX_VARIANTS = 100


def rng_for(seed: int, *parts: object) -> random.Random:
    """A Random seeded from a stable hash, so streams do not depend on PYTHONHASHSEED."""
    digest = hashlib.blake2b(repr((seed, *parts)).encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def iso(dt: datetime | None) -> str | None:
    """Shopify's GraphQL DateTime: UTC, second precision, 'Z'."""
    if dt is None:
        return None
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def gid(kind: str, number: int) -> str:
    return f"gid://shopify/{kind}/{number}"


def money(amount: Decimal, currency: str) -> str:
    """Shopify's Money/Decimal strings: two decimals, or '.0' for zero-decimal currencies."""
    if currency == "JPY":
        return f"{int(amount)}.0"
    return f"{amount.quantize(Decimal('0.01'))}"


@lru_cache(maxsize=8192)  # titles and vendors repeat a lot: generation slugifies each of them more than once
def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    out, dash = [], False
    for ch in ascii_text.lower():
        if ch.isalnum():
            out.append(ch)
            dash = False
        elif not dash and out:
            out.append("-")
            dash = True
    return "".join(out).strip("-")


@dataclass(frozen=True)
class ProductType:
    name: str
    price: tuple[int, int]
    option: str  # the first option for multi-variant products
    en: tuple[str, ...]
    fr: str
    de: str
    es: str
    ja: str
    zh: str


PRODUCT_TYPES: tuple[ProductType, ...] = (
    ProductType("T-Shirt", (18, 45), "Size", ("Tee", "T-Shirt", "Crew Tee"),
                "T-shirt en coton bio", "Bio-Baumwoll-T-Shirt", "Camiseta de algodón",
                "オーガニックTシャツ", "有机棉T恤"),
    ProductType("Hoodie", (45, 95), "Size", ("Hoodie", "Zip Hoodie"),
                "Sweat à capuche", "Kapuzenpullover", "Sudadera con capucha",
                "パーカー", "连帽卫衣"),
    ProductType("Scarf", (25, 80), "Color", ("Scarf", "Wrap"),
                "Écharpe en laine mérinos", "Schal aus Merinowolle", "Bufanda de lana",
                "ウールマフラー", "羊毛围巾"),
    ProductType("Socks", (9, 22), "Size", ("Socks", "Crew Socks"),
                "Chaussettes rayées", "Gestreifte Socken", "Calcetines de rayas",
                "靴下", "条纹袜子"),
    ProductType("Sneakers", (70, 180), "Size", ("Sneakers", "Runner"),
                "Baskets en toile", "Leinen-Sneaker", "Zapatillas de lona",
                "スニーカー", "帆布运动鞋"),
    ProductType("Backpack", (45, 160), "Color", ("Backpack", "Daypack"),
                "Sac à dos imperméable", "Wasserdichter Rucksack", "Mochila impermeable",
                "リュックサック", "防水背包"),
    ProductType("Mug", (12, 32), "Color", ("Mug", "Cup"),
                "Tasse en céramique émaillée", "Keramiktasse", "Taza de cerámica",
                "抹茶ティーカップ", "手工陶瓷茶杯"),
    ProductType("Candle", (16, 48), "Scent", ("Candle", "Soy Candle"),
                "Bougie parfumée à la lavande", "Duftkerze Lavendel", "Vela aromática",
                "桜のキャンドル", "香薰蜡烛"),
    ProductType("Tea", (8, 30), "Size", ("Tea Blend", "Loose Leaf Tea"),
                "Thé vert à la menthe", "Grüner Tee mit Minze", "Té verde con menta",
                "玉露 緑茶", "龙井绿茶"),
    ProductType("Notebook", (9, 35), "Color", ("Notebook", "Journal"),
                "Carnet de notes pointillé", "Gepunktetes Notizbuch", "Cuaderno punteado",
                "ドット方眼ノート", "点阵笔记本"),
    ProductType("Poster", (15, 60), "Size", ("Poster", "Art Print"),
                "Affiche « Coucher de soleil »", "Poster „Sonnenuntergang“", "Póster atardecer",
                "夕焼けポスター", "日落海报"),
    ProductType("Earrings", (20, 120), "Color", ("Earrings", "Hoops"),
                "Boucles d'oreilles dorées", "Vergoldete Ohrringe", "Pendientes dorados",
                "ゴールドピアス", "金色耳环"),
    ProductType("Sunglasses", (35, 150), "Color", ("Sunglasses", "Shades"),
                "Lunettes de soleil polarisées", "Polarisierte Sonnenbrille", "Gafas de sol polarizadas",
                "サングラス", "偏光太阳镜"),
    ProductType("Plant Pot", (14, 65), "Size", ("Plant Pot", "Planter"),
                "Cache-pot en terre cuite", "Terrakotta-Übertopf", "Maceta de terracota",
                "テラコッタ植木鉢", "陶土花盆"),
    ProductType("Blanket", (40, 140), "Color", ("Blanket", "Throw"),
                "Plaid en laine d'alpaga", "Alpaka-Wolldecke", "Manta de alpaca",
                "アルパカブランケット", "羊驼毛毯"),
)

ADJECTIVES = ("Classic", "Everyday", "Organic", "Vintage", "Minimal", "Cozy", "Heritage", "Coastal",
              "Alpine", "Urban", "Sunset", "Midnight", "Wildflower", "Golden", "Rustic", "Nordic")
MATERIALS = ("Merino", "Linen", "Cotton", "Ceramic", "Bamboo", "Canvas", "Recycled", "Stoneware",
             "Alpaca", "Hemp", "Cork", "Brass")
EMOJI = ("🌿", "🌅", "☕", "✨", "🔥", "🌸", "🐻", "🎁", "🌊", "🍵")
KOREAN = ("한정판 머그컵", "유기농 면 티셔츠", "수제 캔들", "울 목도리")

VENDORS = ("Maison Lumière", "Nordlicht Supply", "Sakura Works", "Atelier Côte", "Acme Outdoor",
           "Blue Fern Co.", "Cobalt & Clay", "Dune Studio", "Échoppe Paris", "Golden Hour Goods",
           "Hanami Tea House", "Ironbark", "Juniper Lane", "Kōbō Ceramics", "Little Otter",
           "Mistral Textiles", "North & Pine", "Oak Hollow", "Papeterie Odéon", "Rivière Bleue")

TAGS = ("new", "sale", "bestseller", "eco", "organic", "summer", "winter", "gift", "limited-edition",
        "handmade", "vegan", "clearance", "back-in-stock", "staff-pick", "made-in-france", "unisex")

COLLECTIONS: tuple[tuple[str, str], ...] = (
    ("Summer Collection", "ALPHA_ASC"), ("Winter Essentials", "MANUAL"), ("New Arrivals", "CREATED_DESC"),
    ("Best Sellers", "BEST_SELLING"), ("Gifts Under 50", "PRICE_ASC"), ("Home & Living", "MANUAL"),
    ("Tea Time", "MANUAL"), ("Stationery", "ALPHA_ASC"), ("Accessories", "BEST_SELLING"),
    ("Outdoor", "MANUAL"), ("Nouveautés", "CREATED_DESC"), ("Soldes d'été", "PRICE_DESC"),
    ("Kitchen", "MANUAL"), ("Eco Friendly", "BEST_SELLING"), ("Limited Edition", "MANUAL"),
    ("Staff Picks", "MANUAL"), ("Back in Stock", "CREATED_DESC"), ("Self Care", "BEST_SELLING"),
    ("For Him", "MANUAL"), ("For Her", "MANUAL"), ("Kids", "ALPHA_ASC"), ("Festival", "MANUAL"),
    ("Travel", "BEST_SELLING"), ("Workspace", "MANUAL"), ("Cozy Nights", "MANUAL"),
    ("Spring Picks", "ALPHA_DESC"), ("Autumn Hues", "MANUAL"), ("Made in France", "MANUAL"),
    ("日本の器", "MANUAL"), ("Last Chance", "PRICE_ASC"),
)

SIZES = ("XS", "S", "M", "L", "XL", "XXL", "3XL", "4XL")
COLORS = ("Black", "White", "Navy", "Sage", "Terracotta", "Sand", "Rose", "Ochre", "Charcoal",
          "Forest", "Sky", "Plum", "Crème")
SCENTS = ("Lavender", "Fig", "Cedar", "Yuzu", "Vanilla", "Sea Salt")
MATERIAL_OPTION = ("Cotton", "Linen", "Wool", "Bamboo")
IMAGE_SIZES = ((800, 800), (1024, 1365), (2048, 2048), (1200, 800), (1600, 1200), (640, 960))
SENTENCES = (
    "Made in small batches by people who care about the details.",
    "Soft to the touch &amp; built to last for years of everyday use.",
    "Fabriqué en France avec des matériaux certifiés — livraison offerte dès 50 €.",
    "Each piece is unique: slight variations in colour are part of its charm.",
    "Machine washable at 30°C. Do not tumble dry.",
    "季節限定のデザインです。",
    "Packed plastic-free in recycled cardboard.",
    "Naturally dyed with plant pigments; colours may fade gently over time.",
)


@dataclass(frozen=True)
class Image:
    id: int
    position: int
    url: str
    width: int
    height: int
    alt: str | None


@dataclass(frozen=True)
class Variant:
    id: int
    product_index: int
    position: int
    title: str
    options: tuple[tuple[str, str], ...]
    price: Decimal
    compare_at_price: Decimal | None
    sku: str | None
    barcode: str | None
    inventory_quantity: int
    inventory_policy: str
    tracked: bool
    taxable: bool
    image_id: int | None
    created_at: datetime
    updated_at: datetime

    @property
    def inventory_item_id(self) -> int:
        return INVENTORY_ITEM_ID_BASE + self.product_index * VARIANT_SLOTS + self.position

    @property
    def available_for_sale(self) -> bool:
        return (not self.tracked) or self.inventory_policy == "CONTINUE" or self.inventory_quantity > 0


@dataclass(frozen=True)
class ProductCore:
    """The cheap fields: enough for filters and sort keys without building variants and media."""

    index: int
    id: int
    title: str
    handle: str
    vendor: str
    product_type: str
    tags: tuple[str, ...]
    status: str
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None
    collections: tuple[int, ...]  # collection indexes (0-based)


@dataclass(frozen=True)
class Product(ProductCore):
    description_html: str = ""
    options: tuple[tuple[str, tuple[str, ...]], ...] = ()
    variants: tuple[Variant, ...] = ()
    images: tuple[Image, ...] = ()

    @property
    def total_inventory(self) -> int:
        return sum(v.inventory_quantity for v in self.variants if v.tracked)

    @property
    def tracks_inventory(self) -> bool:
        return any(v.tracked for v in self.variants)


@dataclass(frozen=True)
class Collection:
    index: int
    id: int
    title: str
    handle: str
    sort_order: str
    description_html: str
    updated_at: datetime
    image: Image | None


@dataclass
class Overlay:
    """Mutations layered over the generated catalogue; replaced wholesale (copy-on-write)."""

    products: dict[int, Product] = field(default_factory=dict)
    deleted: frozenset[int] = frozenset()
    handles: dict[str, int] = field(default_factory=dict)


class Catalogue:
    """A shop's products and collections; only touched indexes are ever materialised."""

    def __init__(self, seed: int, size: int, currency: str, shop_domain: str) -> None:
        self.seed = seed
        self.size = size
        self.currency = currency
        self.shop_domain = shop_domain
        self.lock = threading.RLock()
        self.version = 0
        self._overlay = Overlay()
        self._next_index = size + 1
        # Spread creation dates over the span; integer seconds keep keys strictly increasing.
        self._step = max(4, CATALOGUE_SPAN_S // max(size, 1))
        self._core = lru_cache(maxsize=16384)(self._generate_core)
        self._full = lru_cache(maxsize=4096)(self._generate_product)
        self._sorted_cache: dict[tuple[str, int], list[tuple[tuple, int]]] = {}
        self.collections: tuple[Collection, ...] = tuple(self._generate_collection(c) for c in range(len(COLLECTIONS)))

    # ---- lookups -------------------------------------------------------------------

    def exists(self, index: int) -> bool:
        overlay = self._overlay
        if index in overlay.deleted:
            return False
        return 1 <= index <= self.size or index in overlay.products

    def core(self, index: int) -> ProductCore | None:
        overlay = self._overlay
        if index in overlay.products:
            return overlay.products[index]
        if not self.exists(index):
            return None
        return self._core(index)

    def product(self, index: int) -> Product | None:
        overlay = self._overlay
        if index in overlay.products:
            return overlay.products[index]
        if not self.exists(index):
            return None
        return self._full(index)

    def index_of(self, product_id: int) -> int | None:
        index = product_id - PRODUCT_ID_BASE
        return index if self.exists(index) else None

    def by_handle(self, handle: str) -> Product | None:
        overlay = self._overlay
        if handle in overlay.handles:
            return self.product(overlay.handles[handle])
        # Generated handles end in "-<index>", so the index is recoverable without a scan.
        tail = handle.rsplit("-", 1)[-1]
        if tail.isdigit():
            index = int(tail)
            product = self.product(index)
            if product is not None and product.handle == handle:
                return product
        return None

    def variant(self, variant_id: int) -> Variant | None:
        index, position = divmod(variant_id - VARIANT_ID_BASE, VARIANT_SLOTS)
        product = self.product(index)
        if product is None:
            return None
        return next((v for v in product.variants if v.position == position), None)

    def variant_by_inventory_item(self, item_id: int) -> Variant | None:
        index, position = divmod(item_id - INVENTORY_ITEM_ID_BASE, VARIANT_SLOTS)
        return self.variant(VARIANT_ID_BASE + index * VARIANT_SLOTS + position)

    def collection(self, collection_id: int) -> Collection | None:
        c = collection_id - COLLECTION_ID_BASE
        return self.collections[c] if 0 <= c < len(self.collections) else None

    def live_count(self) -> int:
        overlay = self._overlay
        created = sum(1 for i in overlay.products if i > self.size)
        return self.size + created - len(overlay.deleted)

    def all_indexes(self) -> Iterable[int]:
        overlay = self._overlay
        for i in range(1, self.size + 1):
            if i not in overlay.deleted:
                yield i
        for i in sorted(overlay.products):
            if i > self.size and i not in overlay.deleted:
                yield i

    # ---- orderings -----------------------------------------------------------------

    def segments(self, sort_key: str) -> list[Segment]:
        """Sorted runs whose merge is the catalogue in `sort_key` order (keys: (value, id))."""
        overlay = self._overlay
        deleted = overlay.deleted
        created = [i for i in overlay.products if i > self.size and i not in deleted]
        if sort_key in ("ID", "RELEVANCE"):
            def key(i: int) -> tuple:
                return (PRODUCT_ID_BASE + i, PRODUCT_ID_BASE + i)
            base = MonotoneSegment(1, self.size, key, lambda i: i in deleted)
            return [base, ListSegment(sorted((key(i), i) for i in created))]
        if sort_key == "CREATED_AT":
            base = MonotoneSegment(1, self.size, lambda i: self._generated_key(i, "created_at"),
                                   lambda i: i in deleted)
            return [base, ListSegment(sorted((self._key(i, "created_at"), i) for i in created))]
        if sort_key == "UPDATED_AT":
            # Generated updatedAt grows with the index; mutated products move to their own run.
            touched = overlay.products
            base = MonotoneSegment(1, self.size, lambda i: self._generated_key(i, "updated_at"),
                                   lambda i: i in deleted or i in touched)
            moved = [i for i in touched if i not in deleted]
            return [base, ListSegment(sorted((self._key(i, "updated_at"), i) for i in moved))]
        return [ListSegment(self._materialised(sort_key))]

    def _generated_key(self, index: int, attr: str) -> tuple:
        # Base runs bisect over generated values, which grow with the index by construction.
        core = self._core(index)
        return (iso(getattr(core, attr)), core.id)

    def _key(self, index: int, attr: str) -> tuple:
        core = self.live_core(index)
        return (iso(getattr(core, attr)), core.id)

    def live_core(self, index: int) -> ProductCore:
        core = self.core(index)
        if core is None:
            raise KeyError(index)
        return core

    def live_product(self, index: int) -> Product:
        product = self.product(index)
        if product is None:
            raise KeyError(index)
        return product

    def _materialised(self, sort_key: str) -> list[tuple[tuple, int]]:
        cache_key = (sort_key, self.version)
        cached = self._sorted_cache.get(cache_key)
        if cached is None:
            value = SORT_VALUES[sort_key]
            cached = sorted(((value(self, i), PRODUCT_ID_BASE + i), i) for i in self.all_indexes())
            self._sorted_cache = {cache_key: cached}  # one materialised order at a time
        return cached

    # ---- mutations (callers hold self.lock) ------------------------------------------

    def put(self, product: Product) -> None:
        overlay = self._overlay
        products = {**overlay.products, product.index: product}
        handles = {k: v for k, v in overlay.handles.items() if v != product.index}
        handles[product.handle] = product.index
        self._overlay = Overlay(products, overlay.deleted, handles)
        self.version += 1

    def delete(self, index: int) -> None:
        overlay = self._overlay
        handles = {k: v for k, v in overlay.handles.items() if v != index}
        products = {k: v for k, v in overlay.products.items() if k != index}
        self._overlay = Overlay(products, overlay.deleted | {index}, handles)
        self.version += 1

    def new_index(self) -> int:
        index = self._next_index
        self._next_index += 1
        return index

    def unique_handle(self, wanted: str, index: int) -> str:
        base = slugify(wanted) or "product"
        handle, n = base, 1
        while (other := self.by_handle(handle)) is not None and other.index != index:
            handle = f"{base}-{n}"
            n += 1
        return handle

    def blank_variant(self, index: int, now: datetime) -> Variant:
        return Variant(
            id=VARIANT_ID_BASE + index * VARIANT_SLOTS + 1, product_index=index, position=1,
            title="Default Title", options=(("Title", "Default Title"),), price=Decimal("0.00"),
            compare_at_price=None, sku=None, barcode=None, inventory_quantity=0, inventory_policy="DENY",
            tracked=True, taxable=True, image_id=None, created_at=now, updated_at=now,
        )

    def with_variant(self, product: Product, variant: Variant, now: datetime) -> Product:
        variants = tuple(variant if v.position == variant.position else v for v in product.variants)
        return replace(product, variants=variants, updated_at=now)

    # ---- generation ----------------------------------------------------------------

    def _generate_core(self, index: int) -> ProductCore:
        rng = rng_for(self.seed, "core", index)
        ptype = PRODUCT_TYPES[rng.randrange(len(PRODUCT_TYPES))]
        title = _title(rng, ptype)
        vendor = VENDORS[rng.randrange(len(VENDORS))]
        tags = tuple(sorted(rng.sample(TAGS, rng.choice((0, 1, 1, 2, 2, 3, 4, 6)))))
        roll = rng.random()
        status = "DRAFT" if roll < 0.05 else "ARCHIVED" if roll < 0.08 else "ACTIVE"
        unpublished = rng.random() < 0.03
        jitter_created = rng.randrange(int(self._step * 0.4) + 1)
        jitter_updated = rng.randrange(int(self._step * 0.4) + 1)
        created = EPOCH + timedelta(seconds=(index - 1) * self._step + jitter_created)
        updated = created + timedelta(seconds=UPDATE_LAG_S + jitter_updated)
        published = None
        if status == "ACTIVE" and not unpublished:
            published = created + timedelta(seconds=rng.randrange(3600, 3 * 86400))
        n_collections = rng.choices((0, 1, 2, 3, 4), weights=(20, 35, 25, 12, 8))[0]
        collections = tuple(sorted(rng.sample(range(len(COLLECTIONS)), n_collections)))
        return ProductCore(
            index=index, id=PRODUCT_ID_BASE + index, title=title, handle=f"{slugify(title) or 'product'}-{index}",
            vendor=vendor, product_type=ptype.name, tags=tags, status=status, created_at=created,
            updated_at=updated, published_at=published, collections=collections,
        )

    def _generate_product(self, index: int, core: ProductCore | None = None) -> Product:
        core = core if core is not None else self._core(index)
        rng = rng_for(self.seed, "detail", index)
        ptype = next(t for t in PRODUCT_TYPES if t.name == core.product_type)
        options, combos = _options(rng, ptype)
        images = _images(rng, core, self.shop_domain)
        cents = Decimal(rng.choice(("0", "0.5", "0.9", "0.95")))
        base = Decimal(rng.randrange(ptype.price[0], ptype.price[1] + 1)) + cents
        if self.currency == "JPY":
            base = Decimal(int(base * 150 / 10) * 10)
        on_sale = rng.random() < 0.18
        equal_compare = rng.random() < 0.03  # compare-at == price: not really on sale
        sold_out = rng.random() < 0.06
        tracked_product = rng.random() < 0.93
        policy = "CONTINUE" if rng.random() < 0.05 else "DENY"
        vendor_code = slugify(core.vendor)[:3].upper() or "DEV"
        variants = []
        for position, combo in enumerate(combos, start=1):
            premium = Decimal(2 * _size_rank(combo)) if self.currency != "JPY" else Decimal(300 * _size_rank(combo))
            price = base + premium
            compare = None
            if on_sale and rng.random() < 0.8:
                markup = Decimal(str(round(rng.uniform(1.15, 1.6), 2)))
                compare = (price * markup).quantize(Decimal("1")) - Decimal("0.01")
                if self.currency == "JPY":
                    compare = compare.quantize(Decimal("1"))
            elif equal_compare:
                compare = price
            roll = rng.random()
            if sold_out or roll < 0.12:
                qty = 0
            elif roll < 0.15:
                qty = -rng.randint(1, 5)
            else:
                qty = min(rng.randint(1, 40) * rng.randint(1, 5), 200)
            variants.append(Variant(
                id=VARIANT_ID_BASE + index * VARIANT_SLOTS + position, product_index=index, position=position,
                title=" / ".join(v for _, v in combo), options=combo, price=price, compare_at_price=compare,
                sku=None if rng.random() < 0.06 else f"{vendor_code}-{index:06d}-{position:02d}",
                barcode=None if rng.random() < 0.5 else str(rng.randrange(10**12, 10**13)),
                inventory_quantity=qty, inventory_policy=policy, tracked=tracked_product,
                taxable=rng.random() < 0.95,
                image_id=images[(position - 1) % len(images)].id if images and len(images) > 1 else None,
                created_at=core.created_at, updated_at=core.updated_at,
            ))
        return Product(**vars(core), description_html=_description(rng, core.title),
                       options=options, variants=tuple(variants), images=images)

    def streaming(self) -> StreamingCatalogue:
        """A view for long scans (bulk exports): same records, generated without touching the LRU caches."""
        return StreamingCatalogue(self)

    def _generate_collection(self, c: int) -> Collection:
        rng = rng_for(self.seed, "collection", c)
        title, sort_order = COLLECTIONS[c]
        handle = slugify(title) or f"collection-{c + 1}"
        image = None
        if rng.random() < 0.6:
            w, h = IMAGE_SIZES[rng.randrange(len(IMAGE_SIZES))]
            image = Image(id=MEDIA_ID_BASE - 1000 + c, position=1,
                          url=f"https://cdn.shopify.com/s/files/1/0{self.seed % 1000:03d}/collections/{handle}.jpg",
                          width=w, height=h, alt=title if rng.random() < 0.7 else None)
        return Collection(
            index=c, id=COLLECTION_ID_BASE + c, title=title, handle=handle, sort_order=sort_order,
            description_html=f"<p>{title} — {SENTENCES[c % len(SENTENCES)]}</p>",
            updated_at=EPOCH + timedelta(days=30 + 7 * c, seconds=rng.randrange(86400)), image=image,
        )


class StreamingCatalogue:
    """The catalogue read without its LRU caches, so a scan of every product neither evicts the records hot for
    ordinary requests nor grows the process: only the last few records are remembered (a filter and the node
    resolving one product ask for it twice). Everything else is the wrapped catalogue's."""

    # More than a page (250) of each, so a filtered page's records are still there when its nodes resolve.
    RECENT_CORES = 2048
    RECENT_PRODUCTS = 512

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self._cores: dict[int, ProductCore] = {}
        self._products: dict[int, Product] = {}

    def __getattr__(self, name: str) -> object:
        return getattr(self.catalogue, name)

    def core(self, index: int) -> ProductCore | None:
        cat = self.catalogue
        overlay = cat._overlay
        if index in overlay.products:
            return overlay.products[index]
        if not cat.exists(index):
            return None
        core = self._cores.get(index)
        if core is None:
            if len(self._cores) >= self.RECENT_CORES:
                self._cores.clear()
            core = self._cores[index] = cat._generate_core(index)
        return core

    def product(self, index: int) -> Product | None:
        cat = self.catalogue
        overlay = cat._overlay
        if index in overlay.products:
            return overlay.products[index]
        if not cat.exists(index):
            return None
        product = self._products.get(index)
        if product is None:
            if len(self._products) >= self.RECENT_PRODUCTS:
                self._products.clear()
            core = self.core(index)
            assert core is not None
            product = self._products[index] = cat._generate_product(index, core)
        return product

    def live_core(self, index: int) -> ProductCore:
        core = self.core(index)
        if core is None:
            raise KeyError(index)
        return core

    def live_product(self, index: int) -> Product:
        product = self.product(index)
        if product is None:
            raise KeyError(index)
        return product


def _title(rng: random.Random, ptype: ProductType) -> str:
    roll = rng.random()
    if roll < 0.09:
        return ptype.fr
    if roll < 0.13:
        return ptype.de
    if roll < 0.17:
        return ptype.es
    if roll < 0.21:
        return ptype.ja
    if roll < 0.24:
        return ptype.zh
    if roll < 0.25:
        return KOREAN[rng.randrange(len(KOREAN))]
    noun = rng.choice(ptype.en)
    title = f"{rng.choice(ADJECTIVES)} {rng.choice(MATERIALS)} {noun}"
    if roll < 0.30:
        emoji = rng.choice(EMOJI)
        return f"{emoji} {title}" if rng.random() < 0.5 else f"{title} {emoji}"
    return title


def _options(rng: random.Random, ptype: ProductType) -> tuple[tuple, tuple]:
    n = rng.choices((1, rng.randint(2, 5), rng.randint(6, 20), rng.randint(21, 60), rng.randint(61, MAX_VARIANTS)),
                    weights=(60, 25, 10, 4, 1))[0]
    if n == 1:
        return (("Title", ("Default Title",)),), ((("Title", "Default Title"),),)
    first = {"Size": SIZES, "Color": COLORS, "Scent": SCENTS}[ptype.option]
    second_name = "Color" if ptype.option != "Color" else "Material"
    second = COLORS if second_name == "Color" else MATERIAL_OPTION
    axes: list[tuple[str, tuple[str, ...]]] = [(ptype.option, first)]
    if n > len(first):
        axes.append((second_name, second))
    if n > len(first) * len(second):
        axes = [("Size", SIZES), ("Color", COLORS)]
        if n > len(SIZES) * len(COLORS):
            axes.append(("Material", MATERIAL_OPTION))
    combos: list[tuple[tuple[str, str], ...]] = [()]
    for name, values in axes:
        combos = [c + ((name, v),) for c in combos for v in values]
    combos = combos[:n]
    options = tuple((name, tuple(dict.fromkeys(c[k][1] for c in combos))) for k, (name, _) in enumerate(axes))
    return options, tuple(combos)


def _size_rank(combo: tuple[tuple[str, str], ...]) -> int:
    for name, value in combo:
        if name == "Size" and value in SIZES:
            return max(0, SIZES.index(value) - 3)
    return 0


def _images(rng: random.Random, core: ProductCore, shop_domain: str) -> tuple[Image, ...]:
    count = rng.choices((0, 1, 2, 3, 4, 5), weights=(15, 30, 20, 15, 10, 10))[0]
    slug = slugify(core.title) or "product"
    version = int(core.created_at.timestamp())
    images = []
    for m in range(1, count + 1):
        w, h = IMAGE_SIZES[rng.randrange(len(IMAGE_SIZES))]
        roll = rng.random()
        alt = None if roll < 0.25 else "" if roll < 0.35 else f"{core.title} — view {m}"
        images.append(Image(
            id=MEDIA_ID_BASE + core.index * MEDIA_SLOTS + m, position=m,
            url=f"https://cdn.shopify.com/s/files/1/0{core.index % 997:03d}/files/{slug}-{m}.jpg?v={version}",
            width=w, height=h, alt=alt,
        ))
    return tuple(images)


def _description(rng: random.Random, title: str) -> str:
    if rng.random() < 0.08:
        return ""
    picked = rng.sample(SENTENCES, rng.randint(1, 3))
    html = f"<p><strong>{title.replace('&', '&amp;')}</strong>. {' '.join(picked)}</p>"
    if rng.random() < 0.4:
        bullets = "".join(f"<li>{rng.choice(MATERIALS)} {rng.choice(('finish', 'lining', 'trim', 'base'))}</li>"
                          for _ in range(rng.randint(2, 4)))
        html += f"<ul>{bullets}</ul>"
    return html


def _min_price(cat: Catalogue, i: int) -> str:
    prices = [v.price for v in cat.live_product(i).variants]
    return f"{min(prices):020.2f}" if prices else ""


SORT_VALUES: dict[str, Callable[[Catalogue, int], object]] = {
    "TITLE": lambda cat, i: cat.live_core(i).title.casefold(),
    "VENDOR": lambda cat, i: cat.live_core(i).vendor.casefold(),
    "PRODUCT_TYPE": lambda cat, i: cat.live_core(i).product_type.casefold(),
    "PUBLISHED_AT": lambda cat, i: iso(cat.live_core(i).published_at) or "",
    "INVENTORY_TOTAL": lambda cat, i: cat.live_product(i).total_inventory,
    "PRICE": _min_price,
    # A stable pseudo sales rank, so BEST_SELLING is a real (if made-up) order.
    "BEST_SELLING": lambda cat, i: -rng_for(cat.seed, "sales", i).randrange(100_000),
}
