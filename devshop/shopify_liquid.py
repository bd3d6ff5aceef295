"""Shopify's Liquid for devshop's storefront: python-liquid environments with the tags, filters and objects that
themes and theme app extensions use, and a check that a Liquid file uses nothing else.

Two environments render a page: the theme's (devshop/theme: `section`, `render block` for app blocks, the theme's
locales and assets) and the extension's (a theme app extension's blocks and snippets: no `section`/`include`, the
extension's locales and CDN assets), as on Shopify. Both parse Shopify's way where python-liquid differs: a property
named like a Liquid keyword (`block.settings.limit`, `.offset`, `.reversed`, ...) is a property, not a syntax error.
Prices are Shopify money values (integers in the currency's hundredths) in the shopper's presentment currency, which
the `money` filters format with the shop's per-currency money formats.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from html import escape as html_escape
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from babel.numbers import get_currency_precision, get_currency_symbol
from liquid import BoundTemplate, Environment, RenderContext
from liquid.ast import BlockNode, Node
from liquid.builtin import CachingFileSystemLoader
from liquid.builtin.expressions import FilteredExpression, Identifier, tokenize
from liquid.builtin.output import Output, OutputNode
from liquid.builtin.tags.liquid_tag import LiquidTag
from liquid.builtin.tags.render_tag import RenderNode, RenderTag
from liquid.exceptions import LiquidError, LiquidSyntaxError
from liquid.filter import with_context, with_environment
from liquid.parser import get_parser
from liquid.stream import TokenStream
from liquid.tag import Tag
from liquid.token import TOKEN_DOT, TOKEN_EOF, TOKEN_EXPRESSION, TOKEN_OUTPUT, TOKEN_TAG, TOKEN_WORD, Token
from liquid.undefined import Undefined

# The render-time state of the page being rendered (a devshop.storefront.Page), under a name no template can write.
PAGE_KEY = "devshop:page"
SCHEMA = re.compile(r"{%-?\s*schema\s*-?%}(.*?){%-?\s*endschema\s*-?%}", re.DOTALL)
WORD = re.compile(r"[A-Za-z_][\w-]*\??")
PLACEHOLDER = re.compile(r"{{\s*([\w.]+)\s*}}")


def read_schema(source: str) -> dict[str, Any]:
    """The JSON of a file's `{% schema %}` tag ({} without one); ValueError when it is not a JSON object."""
    found = SCHEMA.search(source)
    if not found:
        return {}
    schema = json.loads(found.group(1))
    if not isinstance(schema, dict):
        raise ValueError("the schema tag must hold a JSON object")
    return schema


# ---- parsing Shopify's way -----------------------------------------------------------------------------------------

def shopify_tokenize(source: str, parent_token: Token) -> Iterator[Token]:
    """python-liquid's expression tokens, except that a keyword right after a dot is a property name, as in
    Shopify's Liquid: `block.settings.limit` reads the setting `limit` (python-liquid stops at `limit`)."""
    previous = ""
    for token in tokenize(source, parent_token):
        if previous == TOKEN_DOT and token.kind == token.value and WORD.fullmatch(token.value):
            token = token._replace(kind=TOKEN_WORD)
        previous = token.kind
        yield token


class ShopifyTokenStream(TokenStream):
    def into_inner(self, *, tag: Token | None = None, eat: bool = True) -> TokenStream:
        token = self.current
        if token.kind != TOKEN_EXPRESSION:
            raise LiquidSyntaxError("missing expression", token=tag or token)
        if eat:
            next(self)
        return TokenStream(shopify_tokenize(token.value, parent_token=token))


class ShopifyOutput(Output):
    def parse(self, stream: TokenStream) -> OutputNode:
        token = stream.eat(TOKEN_OUTPUT)
        expr_token = stream.expect(TOKEN_EXPRESSION)
        return self.node_class(token, FilteredExpression.parse(
            self.env, TokenStream(shopify_tokenize(expr_token.value, expr_token))))


class ShopifyLiquidTag(LiquidTag):
    """`{% liquid %}` whose lines parse with ShopifyTokenStream."""

    def parse(self, stream: TokenStream) -> Node:
        token = stream.eat(TOKEN_TAG)
        if stream.current.kind == TOKEN_EOF:
            return self.node_class(token, None, block=BlockNode(token, []))
        if stream.current.kind == TOKEN_TAG:
            return self.node_class(token, None, block=get_parser(self.env).parse_block(stream, end=()))
        expression = stream.expect(TOKEN_EXPRESSION)
        lines = ShopifyTokenStream(self._tokenize(expression.value, token=expression),
                                   block_depth_carry=stream.block_depth)
        return self.node_class(token, expression, block=get_parser(self.env).parse_block(lines, end=()))


# ---- Shopify tags --------------------------------------------------------------------------------------------------

class SchemaNode(Node):
    """`{% schema %}`: settings for the theme editor. Renders nothing; devshop reads the JSON with read_schema."""

    def render_to_output(self, context: RenderContext, buffer: Any) -> int:
        return 0


class SchemaTag(Tag):
    name = "schema"
    end = "endschema"
    block = True

    def parse(self, stream: TokenStream) -> Node:
        token = stream.eat(TOKEN_TAG)
        while not (stream.current.kind == TOKEN_TAG and stream.current.value == self.end):
            if stream.current.kind == TOKEN_EOF:
                raise LiquidSyntaxError("schema tag was never closed", token=token)
            next(stream)
        return SchemaNode(token)


class StyleNode(Node):
    __slots__ = ("block",)

    def __init__(self, token: Token, block: BlockNode) -> None:
        super().__init__(token)
        self.block = block
        self.blank = False

    def render_to_output(self, context: RenderContext, buffer: Any) -> int:
        buffer.write("<style data-shopify>")
        self.block.render(context, buffer)
        buffer.write("</style>")
        return 1

    def children(self, static_context: RenderContext, *, include_partials: bool = True) -> Iterable[Node]:
        yield self.block


class StyleTag(Tag):
    """`{% style %}…{% endstyle %}`: a <style data-shopify> element whose CSS may hold Liquid."""

    name = "style"
    end = "endstyle"
    block = True

    def parse(self, stream: TokenStream) -> Node:
        token = stream.eat(TOKEN_TAG)
        block = get_parser(self.env).parse_block(stream, (self.end, TOKEN_EOF))
        stream.expect(TOKEN_TAG, value=self.end)
        return StyleNode(token, block)


class SectionNode(Node):
    __slots__ = ("section",)

    def __init__(self, token: Token, section: str) -> None:
        super().__init__(token)
        self.section = section
        self.blank = False

    def render_to_output(self, context: RenderContext, buffer: Any) -> int:
        buffer.write(context.resolve(PAGE_KEY).render_static_section(self.section))
        return 1


class SectionTag(Tag):
    """`{% section 'header' %}` (themes only): a static section, rendered with its schema's default settings."""

    name = "section"
    block = False

    def parse(self, stream: TokenStream) -> Node:
        token = stream.eat(TOKEN_TAG)
        inner = stream.into_inner(tag=token, eat=False)
        if inner.current.kind != "string":
            raise LiquidSyntaxError("expected a section name in quotes", token=inner.current)
        name = inner.current.value
        next(inner)
        inner.expect_eos()
        return SectionNode(token, name)


class AppBlockRenderNode(RenderNode):
    """`{% render block %}` in a theme section renders an app block, as Shopify's themes do; otherwise `render`."""

    def render_to_output(self, context: RenderContext, buffer: Any) -> int:
        if isinstance(self.name, Identifier):
            target = context.resolve(self.name, default=None)
            if isinstance(target, AppBlockDrop):
                buffer.write(context.resolve(PAGE_KEY).render_app_block(target))
                return 1
        return super().render_to_output(context, buffer)


class AppBlockRenderTag(RenderTag):
    node_class = AppBlockRenderNode


# ---- objects -------------------------------------------------------------------------------------------------------

class Drop(dict):  # type: ignore[type-arg]
    """A Shopify object as a mapping (what python-liquid reads), printed the way Shopify prints it."""

    text = ""

    def __str__(self) -> str:
        return self.text


class ImageDrop(Drop):
    def __str__(self) -> str:
        return str(self.get("src") or "")


class TemplateDrop(Drop):
    def __str__(self) -> str:
        return str(self.get("name") or "")


class AppBlockDrop(Drop):
    """`block` for an app block: id, type "@app", settings, shopify_attributes; the block's definition and the
    section holding it are devshop's (Python attributes, not Liquid properties)."""

    def __init__(self, values: Mapping[str, Any], definition: Any, section_id: str) -> None:
        super().__init__(values)
        self.definition = definition
        self.section_id = section_id


class CollectionDropBase(Drop):
    """A `collection` whose products are looked up only when a template reads them."""

    LAZY = ("products", "products_count", "all_products_count")

    def __missing__(self, key: str) -> Any:
        if key in self.LAZY:
            self.load_products()
            return dict.__getitem__(self, key)
        raise KeyError(key)

    def load_products(self) -> None:
        raise NotImplementedError


# ---- money ---------------------------------------------------------------------------------------------------------

# Shopify's default money formats per currency (Settings → General → Store currency); others: symbol + amount.
MONEY_FORMATS = {
    "USD": "${{amount}}", "CAD": "${{amount}}", "AUD": "${{amount}}", "NZD": "${{amount}}",
    "EUR": "€{{amount_with_comma_separator}}", "GBP": "£{{amount}}", "JPY": "¥{{amount_no_decimals}}",
    "CHF": "CHF {{amount}}", "SEK": "{{amount_with_comma_separator}} kr", "DKK": "{{amount_with_comma_separator}} kr",
}


def money_format(currency: str) -> str:
    currency = currency.upper()
    return MONEY_FORMATS.get(currency) or f"{get_currency_symbol(currency, locale='en')}{{{{amount}}}}"


def to_subunits(amount: Decimal | None) -> int | None:
    """A price as Liquid sees it: an integer in hundredths of the currency (Shopify does so for every currency)."""
    if amount is None:
        return None
    return int((amount * 100).to_integral_value(rounding=ROUND_HALF_UP))


def _amount(value: Decimal, decimals: int, thousands: str, point: str) -> str:
    text = f"{value:,.{decimals}f}"
    return text.replace(",", "\0").replace(".", point).replace("\0", thousands)


def format_money(subunits: Any, currency: str, *, with_currency: bool = False, without_currency: bool = False,
                 strip_zeros: bool = False) -> str:
    """Shopify's `money` filters: `subunits` (an integer, hundredths) in `currency`'s money format."""
    if subunits is None or isinstance(subunits, Undefined) or subunits == "":
        return ""
    try:
        value = Decimal(str(subunits)) / 100
    except InvalidOperation:
        return ""
    currency = currency.upper()
    fmt = money_format(currency)
    precision = get_currency_precision(currency)

    def amount(placeholder: str) -> str:
        decimals = 0 if "no_decimals" in placeholder else precision
        if strip_zeros and value == value.to_integral_value():
            decimals = 0
        if "comma_separator" in placeholder:
            return _amount(value, decimals, ".", ",")
        if "apostrophe_separator" in placeholder:
            return _amount(value, decimals, "'", ".")
        if "space_separator" in placeholder:
            return _amount(value, decimals, " ", ",")
        return _amount(value, decimals, ",", ".")

    if without_currency:
        found = PLACEHOLDER.search(fmt)
        return amount(found.group(1) if found else "amount")
    text = PLACEHOLDER.sub(lambda m: amount(m.group(1)), fmt)
    if with_currency and currency not in text:
        text = f"{text} {currency}"
    return text


# ---- translations --------------------------------------------------------------------------------------------------

class Locales:
    """A theme's or an extension's storefront locale files (locales/<code>.json, one `.default.json`), reread when
    they change. `translate` falls back to the default locale, then says "translation missing" as Shopify does."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._stamp: tuple[tuple[str, int], ...] | None = None
        self._files: dict[str, dict[str, Any]] = {}
        self.default = "en"
        self._lock = threading.Lock()

    def refresh(self) -> None:
        paths = sorted(p for p in self.directory.glob("*.json") if not p.name.endswith(".schema.json")) \
            if self.directory.is_dir() else []
        stamp = tuple((p.name, p.stat().st_mtime_ns) for p in paths)
        if stamp == self._stamp:
            return
        files: dict[str, dict[str, Any]] = {}
        default = "en"
        for path in paths:
            code = path.name.removesuffix(".json")
            if code.endswith(".default"):
                code = code.removesuffix(".default")
                default = code
            files[code.lower()] = json.loads(path.read_text(encoding="utf-8"))
        with self._lock:
            self._files, self.default, self._stamp = files, default, stamp

    @property
    def codes(self) -> list[str]:
        return sorted(self._files)

    def lookup(self, locale: str, key: str) -> Any:
        for code in dict.fromkeys((locale.lower(), locale.lower().split("-")[0], self.default)):
            node: Any = self._files.get(code)
            for part in key.split("."):
                node = node.get(part) if isinstance(node, dict) else None
            if node is not None:
                return node
        return None

    def translate(self, locale: str, key: str, variables: Mapping[str, Any]) -> str:
        found = self.lookup(locale, key)
        if isinstance(found, dict) and "count" in variables:
            count = variables["count"]
            found = (found.get("zero") if count == 0 and "zero" in found else
                     found.get("one") if count == 1 else found.get("other"))
        if not isinstance(found, str):
            return f"translation missing: {locale}.{key}"
        return PLACEHOLDER.sub(lambda m: str(variables.get(m.group(1), "")), found)


# ---- filters -------------------------------------------------------------------------------------------------------

def _page(context: RenderContext) -> Any:
    return context.resolve(PAGE_KEY)


@with_environment
@with_context
def t_filter(key: Any, *, context: RenderContext, environment: ShopifyEnvironment, **variables: Any) -> str:
    return environment.locales.translate(_page(context).locale, str(key), variables)


@with_environment
def asset_url(name: Any, *, environment: ShopifyEnvironment) -> str:
    return environment.asset_url(str(name))


def _money_filter(**options: bool) -> Callable[..., str]:
    @with_context
    def money(value: Any, *, context: RenderContext) -> str:
        return format_money(value, _page(context).currency, **options)

    return money


def image_url(image: Any, width: Any = None, height: Any = None, crop: Any = None, format: Any = None,  # noqa: A002
              pad_color: Any = None) -> ImageUrl | str:
    """Shopify's image_url: the image's CDN URL with the requested size (width= and/or height=) and options."""
    src = image.get("src") if isinstance(image, Mapping) else image
    if not src or isinstance(src, Undefined):
        return ""
    parts = urlsplit(str(src))
    params = [p for p in parts.query.split("&") if p and p.split("=", 1)[0] not in
              ("width", "height", "crop", "format", "pad_color")]
    for name, value in (("width", width), ("height", height), ("crop", crop), ("format", format),
                        ("pad_color", pad_color)):
        if value is not None and not isinstance(value, Undefined):
            params.append(f"{name}={quote(str(value))}")
    url = urlunsplit((parts.scheme, parts.netloc, parts.path, "&".join(params), ""))
    return ImageUrl(url, image if isinstance(image, Mapping) else None, width, height)


class ImageUrl(str):
    """image_url's answer remembers its image, so image_tag can give the <img> its size and alt text."""

    image: Mapping[str, Any] | None
    width: Any
    height: Any

    def __new__(cls, url: str, image: Mapping[str, Any] | None, width: Any, height: Any) -> ImageUrl:
        made = super().__new__(cls, url)
        made.image, made.width, made.height = image, width, height
        return made


def image_tag(url: Any, **attributes: Any) -> str:
    """Shopify's image_tag: an <img> with width/height (from the image's aspect ratio), alt, srcset for `widths`."""
    image = getattr(url, "image", None) or {}
    natural_w, natural_h = image.get("width"), image.get("height")
    width = attributes.pop("width", None) or getattr(url, "width", None) or natural_w
    height = attributes.pop("height", None) or getattr(url, "height", None)
    if height is None and width and natural_w and natural_h:
        height = round(int(width) * int(natural_h) / int(natural_w))
    widths = attributes.pop("widths", None)
    attrs: dict[str, Any] = {"src": str(url), "alt": attributes.pop("alt", image.get("alt") or "")}
    if widths:
        sizes = [int(w) for w in str(widths).split(",") if w.strip().isdigit()]
        attrs["srcset"] = ", ".join(f"{image_url(image or str(url), width=w)} {w}w" for w in sizes)
    if width:
        attrs["width"] = width
    if height:
        attrs["height"] = height
    attrs.update(attributes)
    return "<img " + " ".join(f'{k}="{html_escape(str(v))}"' for k, v in attrs.items() if v is not None) + ">"


def json_filter(value: Any) -> str:
    """Shopify's json: JSON, with <, > and & escaped so it is safe inside a <script>."""
    if isinstance(value, Undefined):
        value = None
    text = json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def handleize(value: Any) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(value or "").lower()).strip("-")


def script_tag(url: Any) -> str:
    return f'<script src="{html_escape(str(url))}" type="text/javascript"></script>'


def stylesheet_tag(url: Any, media: Any = "all") -> str:
    return f'<link href="{html_escape(str(url))}" rel="stylesheet" type="text/css" media="{html_escape(str(media))}">'


def url_param_escape(value: Any) -> str:
    return quote(str(value or ""), safe="")


def url_escape(value: Any) -> str:
    return quote(str(value or ""), safe="/:?=#&@!$'()*+,;~")


@with_context
def keep_market(url: Any, *, context: RenderContext) -> str:
    """devshop's own (themes only): the URL with the request's `country` and `locale` parameters, so links and
    forms stay in the shopper's market and language (Shopify keeps those in the URL prefix and a cookie)."""
    extra = _page(context).query
    if not extra:
        return str(url)
    text = str(url)
    return f"{text}{'&' if '?' in text else '?'}{urlencode(extra)}"


# Filters python-liquid has that Shopify's Liquid does not: gone, so a block cannot come to depend on them.
NOT_SHOPIFY_FILTERS = ("safe", "escapejs", "squish")


def shopify_filters() -> dict[str, Callable[..., Any]]:
    return {
        "t": t_filter, "translate": t_filter, "asset_url": asset_url,
        "money": _money_filter(), "money_with_currency": _money_filter(with_currency=True),
        "money_without_currency": _money_filter(without_currency=True),
        "money_without_trailing_zeros": _money_filter(strip_zeros=True),
        "image_url": image_url, "image_tag": image_tag, "json": json_filter, "handleize": handleize,
        "handle": handleize, "script_tag": script_tag, "stylesheet_tag": stylesheet_tag,
        "url_param_escape": url_param_escape, "url_escape": url_escape,
    }


# ---- environments --------------------------------------------------------------------------------------------------

class ShopifyEnvironment(Environment):
    """A python-liquid Environment that parses and renders the way Shopify's Liquid does for devshop."""

    def __init__(self, snippets: Path, locales: Path, asset_dir: Path, asset_base: str) -> None:
        super().__init__(loader=CachingFileSystemLoader(snippets, ext=".liquid"), strict_filters=True)
        self.locales = Locales(locales)
        self.asset_dir = asset_dir
        self.asset_base = asset_base.rstrip("/") + "/"
        self._templates: dict[Path, tuple[int, BoundTemplate]] = {}
        self._asset_versions: dict[str, tuple[int, str]] = {}
        self.add_tag(ShopifyOutput)
        self.add_tag(ShopifyLiquidTag)
        self.add_tag(SchemaTag)
        self.add_tag(StyleTag)
        for name in NOT_SHOPIFY_FILTERS:
            self.filters.pop(name, None)
        for name, func in shopify_filters().items():
            self.add_filter(name, func)

    def _parse(self, source: str) -> list[Node]:
        return get_parser(self).parse(ShopifyTokenStream(self.tokenizer()(source)))

    def load(self, path: Path, name: str) -> BoundTemplate:
        """A Liquid file parsed once per version on disk."""
        stamp = path.stat().st_mtime_ns
        cached = self._templates.get(path)
        if cached is None or cached[0] != stamp:
            cached = (stamp, self.from_string(path.read_text(encoding="utf-8"), name=name, path=path))
            self._templates[path] = cached
        return cached[1]

    def asset_url(self, name: str) -> str:
        """The asset's CDN URL with a content version (`?v=`), so it may be cached for a year."""
        path = self.asset_dir / name
        try:
            stamp = path.stat().st_mtime_ns
        except OSError:
            return self.asset_base + quote(name)
        cached = self._asset_versions.get(name)
        if cached is None or cached[0] != stamp:
            cached = (stamp, hashlib.sha256(path.read_bytes()).hexdigest()[:10])
            self._asset_versions[name] = cached
        return f"{self.asset_base}{quote(name)}?v={cached[1]}"


def theme_environment(theme_dir: Path, asset_base: str) -> ShopifyEnvironment:
    env = ShopifyEnvironment(theme_dir / "snippets", theme_dir / "locales", theme_dir / "assets", asset_base)
    env.add_tag(SectionTag)
    env.add_tag(AppBlockRenderTag)
    env.add_filter("keep_market", keep_market)
    return env


# Tags an app block may not use (theme-check's AppBlockValidTags); `section`, `layout`, `javascript`, `stylesheet` and
# `sections` are never registered for extensions, and `include` is removed.
EXTENSION_FORBIDDEN_TAGS = ("include", "layout", "section", "sections", "javascript", "stylesheet")


def extension_environment(extension_dir: Path, asset_base: str) -> ShopifyEnvironment:
    env = ShopifyEnvironment(extension_dir / "snippets", extension_dir / "locales", extension_dir / "assets",
                             asset_base)
    for name in EXTENSION_FORBIDDEN_TAGS:
        env.tags.pop(name, None)
    return env


# ---- what templates may read ---------------------------------------------------------------------------------------
# A spec is a dict of property → spec, a one-item list [spec] for a list of those, or None for a plain value.

CURRENCY = {"iso_code": None, "name": None, "symbol": None}
IMAGE = {"id": None, "src": None, "url": None, "width": None, "height": None, "alt": None, "aspect_ratio": None}
VARIANT = {"id": None, "title": None, "price": None, "compare_at_price": None, "available": None, "sku": None,
           "url": None, "image": IMAGE, "options": [None], "option1": None, "option2": None, "option3": None}
PRODUCT = {
    "id": None, "handle": None, "title": None, "vendor": None, "type": None, "tags": [None], "description": None,
    "url": None, "available": None, "price": None, "price_min": None, "price_max": None, "price_varies": None,
    "compare_at_price": None, "compare_at_price_min": None, "compare_at_price_max": None,
    "compare_at_price_varies": None, "featured_image": IMAGE, "images": [IMAGE], "variants": [VARIANT],
    "selected_or_first_available_variant": VARIANT, "first_available_variant": VARIANT,
    "has_only_default_variant": None, "options": [None], "created_at": None, "published_at": None,
}
COLLECTION = {"id": None, "handle": None, "title": None, "url": None, "description": None, "image": IMAGE,
              "products": [PRODUCT], "products_count": None, "all_products_count": None}
MARKET = {"id": None, "handle": None}
COUNTRY = {"iso_code": None, "name": None, "currency": CURRENCY, "market": MARKET}
LANGUAGE = {"iso_code": None, "name": None, "endonym_name": None, "primary": None, "root_url": None}
GLOBAL_OBJECTS: dict[str, Any] = {
    "routes": {"root_url": None, "account_login_url": None, "account_logout_url": None},
    "product": PRODUCT,
    "collection": COLLECTION,
    "shop": {"name": None, "permanent_domain": None, "domain": None, "url": None, "currency": None,
             "money_format": None, "money_with_currency_format": None, "locale": None},
    "localization": {"country": COUNTRY, "language": LANGUAGE, "market": MARKET,
                     "available_countries": [COUNTRY], "available_languages": [LANGUAGE]},
    "request": {"locale": LANGUAGE, "design_mode": None, "page_type": None, "host": None, "path": None,
                "origin": None},
    "cart": {"currency": CURRENCY, "item_count": None, "total_price": None},
    # nil for a guest; a customer logged in through devshop (customers.py) has these
    "customer": {"id": None, "email": None, "first_name": None, "last_name": None, "name": None},
    "template": {"name": None, "suffix": None, "directory": None},
    "canonical_url": None, "page_title": None, "page_description": None,
}
# In app blocks: `block`, and of the section only its id (Shopify's rule for app blocks).
RESOURCE_SETTINGS = {"product": PRODUCT, "collection": COLLECTION}


def block_objects(schema: Mapping[str, Any]) -> dict[str, Any]:
    settings = {str(s["id"]): RESOURCE_SETTINGS.get(str(s.get("type"))) for s in schema.get("settings") or []
                if isinstance(s, Mapping) and "id" in s}
    return {**GLOBAL_OBJECTS, "section": {"id": None},
            "block": {"id": None, "type": None, "settings": settings, "shopify_attributes": None}}


def _unsupported_path(segments: list[Any], objects: Mapping[str, Any]) -> str | None:
    """The first part of a variable path that devshop would not resolve, or None."""
    spec: Any = objects
    walked: list[str] = []
    for segment in segments:
        if isinstance(segment, list):  # a key computed at render time: cannot be checked statically
            return None
        walked.append(str(segment))
        if isinstance(spec, list):
            if isinstance(segment, int) or segment in ("first", "last"):
                spec = spec[0]
                continue
            if segment == "size":
                spec = None
                continue
            return ".".join(walked)
        if isinstance(spec, dict):
            if segment in spec:
                spec = spec[segment]
                continue
            return ".".join(walked)
        return None if segment == "size" else ".".join(walked)  # a plain value has no properties but size
    return None


@dataclass
class Problem:
    file: str
    what: str

    def __str__(self) -> str:
        return f"{self.file}: {self.what}"


@dataclass
class ExtensionCheck:
    """What check_extension found: each problem, and what the extension uses (for the report)."""

    problems: list[Problem] = field(default_factory=list)
    tags: set[str] = field(default_factory=set)
    filters: set[str] = field(default_factory=set)
    objects: set[str] = field(default_factory=set)


def check_extension(extension_dir: Path) -> ExtensionCheck:
    """Every tag, filter and object path the extension's Liquid uses must be one devshop renders.

    Blocks are analyzed with the snippets they render (so a snippet's parameters are known); snippets on their own
    are parsed for tags and filters only."""
    env = extension_environment(extension_dir, "/cdn/check/assets")
    result = ExtensionCheck()
    files = sorted((extension_dir / "blocks").glob("*.liquid")) + sorted((extension_dir / "snippets").glob("*.liquid"))
    for path in files:
        name = str(path.relative_to(extension_dir))
        is_block = path.parent.name == "blocks"
        source = path.read_text(encoding="utf-8")
        try:
            schema = read_schema(source) if is_block else {}
            template = env.from_string(source, name=name, path=path)
            analysis = template.analyze(include_partials=is_block)
        except (LiquidError, ValueError) as err:
            result.problems.append(Problem(name, f"does not parse as devshop's Shopify Liquid: {err}"))
            continue
        result.tags.update(analysis.tags)
        for tag in analysis.tags:
            if tag not in env.tags:
                result.problems.append(Problem(name, f"unsupported tag {{% {tag} %}}"))
        for flt in analysis.filters:
            result.filters.add(flt)
            if flt not in env.filters:
                result.problems.append(Problem(name, f"unsupported filter | {flt}"))
        if not is_block:
            continue
        objects = block_objects(schema)
        for variables in analysis.globals.values():
            for variable in variables:
                result.objects.add(str(variable))
                bad = _unsupported_path(list(variable.segments), objects)
                if bad is not None:
                    result.problems.append(Problem(name, f"unsupported object {bad} (in {variable})"))
    return result
