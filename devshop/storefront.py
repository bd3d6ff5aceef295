"""The shops' storefronts: home, product and collection pages from devshop's own Online Store 2.0 theme
(devshop/theme), with a theme app extension's app blocks in them (extensions/lumi-storefront by default), in the
shopper's market (`?country=`) and language (`?locale=`); and the extension's assets as Shopify's CDN serves them.

A page renders the way Shopify renders one: the JSON template's sections first (an app block puts its schema's
`javascript`/`stylesheet` in <head>, once per page), then the layout with `content_for_header` and
`content_for_layout`, then app embeds (`target: body`) right before </body>. App blocks come from the shop's storefront
configuration (the control API's /storefront; DEFAULT_BLOCKS until set) and show only while the app is installed.

The shopper is a guest (Liquid `customer` is nil) unless logged in through devshop (customers.py: the header
X-Devshop-Customer-Id, or the cookie `/shops/<shop>/account/login?customer=<id>` sets); `customer` then has `id`,
`email`, `first_name`, `last_name` and `name`, and the header shows who it is with a "Log out" link.

Test hooks in the query string, besides `?country=`, `?locale=`, `?design_mode=1`, `?lumi=off` and
`?lumi_<setting>=`: `?devshop_fixed=apply-filters` adds a theme element fixed to the bottom right of the viewport,
a mobile "Apply filters" bar's button (`#devshop-fixed-apply-filters`: position fixed, right 16px, bottom 16px,
56px high, z-index 4, a theme's own low stacking level), so a test can check an app embed's launcher clears it.
"""

from __future__ import annotations

import json
import mimetypes
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, request
from liquid.exceptions import LiquidError
from werkzeug.security import safe_join

from devshop.catalogue import Collection, Product
from devshop.customers import Customer, current_customer
from devshop.markets import market_for_country
from devshop.pages import plain_error
from devshop.shopify_liquid import (
    PAGE_KEY,
    AppBlockDrop,
    Drop,
    ShopifyEnvironment,
    TemplateDrop,
    extension_environment,
    json_filter,
    money_format,
    read_schema,
    theme_environment,
)
from devshop.shops import Shop
from devshop.state import REPO_ROOT, get_state
from devshop.storefront_objects import (
    LANGUAGES,
    CollectionDrop,
    country_drop,
    currency_drop,
    language_drop,
    listed_ok,
    product_drop,
)

bp = Blueprint("devshop_storefront", __name__)

THEME_DIR = Path(__file__).resolve().parent / "theme"
EXTENSION_DIR = REPO_ROOT / "extensions" / "lumi-storefront"
THEME_ASSETS = "/cdn/themes/devshop/assets/"
SECTION_PREFIX = "template--devshop__"
TEMPLATES = ("index", "product", "collection")
EMBEDS = "embeds"
# What a shop's storefront shows until the control API says otherwise.
DEFAULT_BLOCKS: dict[str, list[dict[str, Any]]] = {
    "index": [{"type": "product-feed", "settings": {"feed": "new-arrivals"}},
              {"type": "product-feed", "settings": {"feed": "best-sellers"}}],
    "product": [{"type": "product-feed", "settings": {"feed": "similar"}}],
    "collection": [],
    EMBEDS: [],
}
OFF_VALUES = ("off", "0", "false", "no")
OVERRIDE_PREFIX = "lumi_"  # ?lumi_<setting id>=value overrides that setting in every app block of the page
FIXED_PARAM = "devshop_fixed"
FIXED_ELEMENTS = ("apply-filters",)  # the values ?devshop_fixed= takes (theme snippet devshop-fixed-<value>)
ASSET_MAX_AGE = 365 * 86400
MENU_COLLECTIONS = 4


def default_block_id(handle: str, template: str, n: int) -> str:
    """The id of the n-th app block of a template when its configuration names none."""
    return f"{handle.replace('-', '_')}_{template}_{n}"


class StorefrontError(ValueError):
    """A storefront configuration or a settings override devshop cannot apply (answered 400)."""


# ---- the extension and the theme on disk ---------------------------------------------------------------------------

@dataclass(frozen=True)
class BlockDefinition:
    handle: str
    path: Path
    schema: Mapping[str, Any]

    @property
    def target(self) -> str:
        return str(self.schema.get("target") or "section")

    @property
    def settings(self) -> list[Mapping[str, Any]]:
        return [s for s in self.schema.get("settings") or [] if isinstance(s, Mapping) and "id" in s]

    def assets(self, key: str) -> list[str]:
        value = self.schema.get(key)
        return [value] if isinstance(value, str) else [str(v) for v in value or []]

    def shown_on(self, template: str) -> bool:
        """`enabled_on` / `disabled_on` (templates), as Shopify reads them."""
        enabled, disabled = self.schema.get("enabled_on"), self.schema.get("disabled_on")
        if isinstance(enabled, Mapping) and "templates" in enabled:
            names = enabled.get("templates") or []
            return "*" in names or template in names
        if isinstance(disabled, Mapping):
            names = disabled.get("templates") or []
            return not ("*" in names or template in names)
        return True


class Extension:
    """A theme app extension's blocks, snippets, locales and assets (the files `shopify app deploy` would upload)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.handle = directory.name
        self.asset_base = f"/cdn/extensions/{self.handle}/assets/"
        self.env: ShopifyEnvironment = extension_environment(directory, self.asset_base)
        self._blocks: dict[Path, tuple[int, BlockDefinition]] = {}

    def blocks(self) -> dict[str, BlockDefinition]:
        found: dict[str, BlockDefinition] = {}
        for path in sorted((self.directory / "blocks").glob("*.liquid")):
            stamp = path.stat().st_mtime_ns
            cached = self._blocks.get(path)
            if cached is None or cached[0] != stamp:
                try:
                    schema = read_schema(path.read_text(encoding="utf-8"))
                except ValueError as err:
                    raise StorefrontError(f"{path.name}: the schema is not valid JSON: {err}") from err
                cached = (stamp, BlockDefinition(path.stem, path, schema))
                self._blocks[path] = cached
            found[path.stem] = cached[1]
        return found

    def block(self, handle: str) -> BlockDefinition | None:
        return self.blocks().get(handle)


class Theme:
    """devshop's theme: layout/theme.liquid, templates/<name>.json, sections/, snippets/, locales/, assets/."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.env: ShopifyEnvironment = theme_environment(directory, THEME_ASSETS)

    def template(self, name: str) -> dict[str, Any]:
        return json.loads((self.directory / "templates" / f"{name}.json").read_text(encoding="utf-8"))

    def section(self, kind: str) -> tuple[Any, Mapping[str, Any]]:
        path = self.directory / "sections" / f"{kind}.liquid"
        template = self.env.load(path, f"sections/{kind}.liquid")
        return template, read_schema(path.read_text(encoding="utf-8"))

    def layout(self) -> Any:
        return self.env.load(self.directory / "layout" / "theme.liquid", "layout/theme.liquid")


class Storefront:
    """devshop's storefront settings for the process; hung on DevShopState as `storefront`."""

    def __init__(self, theme_dir: Path | str | None, extension_dir: Path | str | None) -> None:
        self.theme = Theme(Path(theme_dir) if theme_dir else THEME_DIR)
        self.extension = Extension(Path(extension_dir) if extension_dir else EXTENSION_DIR)
        self._demo: dict[tuple[str, int], int | None] = {}
        self._lock = threading.Lock()

    # -- configuration (the control API) --
    def blocks_for(self, shop: Shop, template: str) -> list[dict[str, Any]]:
        return list(shop.storefront.get(template, DEFAULT_BLOCKS[template]))

    def configure(self, shop: Shop, body: Mapping[str, Any]) -> None:
        """Replace the app blocks of the templates named in `body` (and the embeds under "embeds")."""
        unknown = sorted(set(body) - set(DEFAULT_BLOCKS))
        if unknown:
            raise StorefrontError(f"unknown template(s) {', '.join(unknown)}; use {', '.join(DEFAULT_BLOCKS)}")
        checked: dict[str, list[dict[str, Any]]] = {}
        for template, entries in body.items():
            if not isinstance(entries, list):
                raise StorefrontError(f"{template} must be a list of blocks")
            checked[template] = [self._checked_entry(template, n, entry) for n, entry in enumerate(entries, 1)]
        shop.storefront = {**shop.storefront, **checked}

    def _checked_entry(self, template: str, n: int, entry: Any) -> dict[str, Any]:
        where = f"{template}[{n - 1}]"
        if not isinstance(entry, Mapping) or not isinstance(entry.get("type"), str):
            raise StorefrontError(f"{where}: a block is {{\"type\": <block handle>, \"settings\": {{...}}}}")
        definition = self.extension.block(entry["type"])
        if definition is None:
            raise StorefrontError(f"{where}: {self.extension.handle} has no block {entry['type']!r} "
                                  f"(blocks: {', '.join(self.extension.blocks()) or 'none'})")
        wanted = ("body", "head", "compliance_head") if template == EMBEDS else ("section",)
        if definition.target not in wanted:
            raise StorefrontError(f"{where}: {entry['type']} targets {definition.target!r}; "
                                  f"{'embeds' if template == EMBEDS else 'templates'} take {'/'.join(wanted)}")
        settings = entry.get("settings") or {}
        if not isinstance(settings, Mapping):
            raise StorefrontError(f"{where}: settings must be an object")
        for key, value in settings.items():
            check_setting(definition, key, value, where)
        block_id = entry.get("id")
        if block_id is not None and (not isinstance(block_id, str) or not block_id.replace("_", "").replace(
                "-", "").isalnum()):
            raise StorefrontError(f"{where}: id must be letters, digits, - and _")
        return {"type": entry["type"], "settings": dict(settings), **({"id": block_id} if block_id else {})}

    def describe(self, shop: Shop) -> dict[str, Any]:
        root = f"/shops/{shop.domain}/"
        demo = self.demo_product(shop)
        first_collection = shop.catalogue.collections[0] if shop.catalogue.collections else None
        return {
            "shop": shop.domain, "extension": self.extension.handle,
            "blocks": {handle: {"target": d.target, "name": d.schema.get("name"),
                                "settings": {str(s["id"]): s.get("default") for s in d.settings}}
                       for handle, d in self.extension.blocks().items()},
            "templates": {name: self.blocks_for(shop, name) for name in TEMPLATES},
            EMBEDS: self.blocks_for(shop, EMBEDS),
            "pages": {"home": root,
                      "product": f"{root}products/{demo.handle}" if demo else None,
                      "collection": f"{root}collections/{first_collection.handle}" if first_collection else None},
            "demo_product": {"id": demo.id, "handle": demo.handle, "title": demo.title} if demo else None,
        }

    def demo_product(self, shop: Shop) -> Product | None:
        """A listed product worth showing: available, with an image, and with many listed products of its type
        in its price range (what Lumi's similar feed draws on)."""
        key = (shop.domain, shop.catalogue.version)
        if key not in self._demo:
            self._demo = {key: _pick_demo_product(shop)}
        index = self._demo[key]
        return shop.catalogue.product(index) if index is not None else None


def _pick_demo_product(shop: Shop) -> int | None:
    cat = shop.catalogue
    listed = [p for p in (cat.product(i) for i in range(1, min(cat.size, 400) + 1)) if p is not None and listed_ok(p)]
    for product in listed:
        if not product.images or not any(v.available_for_sale for v in product.variants):
            continue
        low = min(v.price for v in product.variants)
        peers = sum(1 for other in listed if other.index != product.index and other.product_type ==
                    product.product_type and low / 2 <= min(v.price for v in other.variants) <= low * 2)
        if peers >= 8:
            return product.index
    return listed[0].index if listed else None


# ---- settings ------------------------------------------------------------------------------------------------------

def check_setting(definition: BlockDefinition, key: str, value: Any, where: str) -> None:
    setting = next((s for s in definition.settings if s["id"] == key), None)
    if setting is None:
        raise StorefrontError(f"{where}: {definition.handle} has no setting {key!r} "
                              f"(settings: {', '.join(str(s['id']) for s in definition.settings)})")
    if value is None:
        return
    kind = setting.get("type")
    if kind in ("select", "radio"):
        options = [str(o.get("value")) for o in setting.get("options") or [] if isinstance(o, Mapping)]
        if str(value) not in options:
            raise StorefrontError(f"{where}: {key} must be one of {', '.join(options)}, not {value!r}")
    elif kind in ("range", "number"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise StorefrontError(f"{where}: {key} must be a number, not {value!r}")
        low, high = setting.get("min"), setting.get("max")
        if (low is not None and value < low) or (high is not None and value > high):
            raise StorefrontError(f"{where}: {key} must be between {low} and {high}, not {value}")
    elif kind == "checkbox":
        if not isinstance(value, bool):
            raise StorefrontError(f"{where}: {key} must be true or false, not {value!r}")
    elif not isinstance(value, str):
        raise StorefrontError(f"{where}: {key} must be a string, not {value!r}")


def parse_override(definition: BlockDefinition, key: str, text: str) -> Any:
    """A ?lumi_<setting>= value as the setting's type (range → number, checkbox → true/false)."""
    setting = next(s for s in definition.settings if s["id"] == key)
    kind = setting.get("type")
    value: Any = text
    if kind in ("range", "number"):
        try:
            value = float(text) if "." in text else int(text)
        except ValueError as err:
            raise StorefrontError(f"{OVERRIDE_PREFIX}{key} must be a number, not {text!r}") from err
    elif kind == "checkbox":
        value = text.lower() in ("1", "true", "on", "yes")
    check_setting(definition, key, value, f"?{OVERRIDE_PREFIX}{key}")
    return value


# ---- a page --------------------------------------------------------------------------------------------------------

class Page:
    """One storefront page being rendered: the shopper's market and language, the objects Liquid sees, and the
    <head> tags the app blocks on it need (PAGE_KEY in the render context)."""

    def __init__(self, storefront: Storefront, shop: Shop, template: str, args: Mapping[str, str], *,
                 origin: str, path: str, installed: bool, customer: Customer | None = None) -> None:
        self.storefront, self.shop, self.template = storefront, shop, template
        self.root = f"/shops/{shop.domain}/"
        wanted_country = (args.get("country") or "").upper()
        countries = [c for m in shop.markets for c in m.countries]
        self.country = wanted_country if wanted_country in countries else next(
            m for m in shop.markets if m.primary).countries[0]
        self.market = market_for_country(shop.markets, self.country)
        wanted_locale = (args.get("locale") or "").lower()
        self.locale = wanted_locale if wanted_locale in LANGUAGES else LANGUAGES[0]
        self.query = {k: v for k, v in (("country", self.country if wanted_country else ""),
                                        ("locale", self.locale if wanted_locale else "")) if v}
        self.design_mode = (args.get("design_mode") or "").lower() in ("1", "true", "yes", "on")
        self.apps_on = installed and (args.get("lumi") or "").lower() not in OFF_VALUES
        self.overrides = {k[len(OVERRIDE_PREFIX):]: v for k, v in args.items() if k.startswith(OVERRIDE_PREFIX)}
        self.fixed = args.get(FIXED_PARAM) or None
        self.origin, self.path = origin, path
        self.customer = customer
        self.head: dict[str, str] = {}  # asset URL → tag, in the order first needed
        self.blocks_taken = False
        self.embed_tail: list[str] = []
        self.globals: dict[str, Any] = {}
        self.product: Drop | None = None
        self.collection: Drop | None = None

    @property
    def currency(self) -> str:
        return self.market.currency

    def setup(self, product: Product | None = None, collection: Collection | None = None) -> None:
        self.storefront.theme.env.locales.refresh()
        self.storefront.extension.env.locales.refresh()
        shop, locale, root = self.shop, self.locale, self.root
        self.product = product_drop(product, self.market, root) if product is not None else None
        self.collection = CollectionDrop(shop, collection, self.market, root) if collection is not None else None
        language = language_drop(locale, locale, root)
        title = (product.title if product else collection.title if collection else shop.name)
        self.globals = {
            PAGE_KEY: self,
            "routes": Drop(root_url=root, account_login_url=f"{root}account/login",
                           account_logout_url=f"{root}account/logout"),
            "shop": Drop(name=shop.name, permanent_domain=shop.domain, domain=shop.domain,
                         url=f"{self.origin}{root}".rstrip("/"), currency=shop.currency,
                         money_format=money_format(shop.currency),
                         money_with_currency_format=f"{money_format(shop.currency)} {shop.currency}", locale=locale),
            "localization": Drop(
                country=country_drop(self.country, self.market, locale), language=language,
                market=Drop(id=self.market.id, handle=self.market.handle),
                available_countries=[country_drop(c, m, locale) for m in shop.markets for c in m.countries],
                available_languages=[language_drop(code, locale, root) for code in LANGUAGES]),
            "request": Drop(locale=language, design_mode=self.design_mode, page_type=self.template,
                            host=self.origin.split("//", 1)[-1], path=self.path, origin=self.origin),
            "cart": Drop(currency=currency_drop(self.currency, locale), item_count=0, total_price=0),
            "customer": customer_drop(self.customer),
            "devshop_fixed": self.fixed,
            "template": TemplateDrop(name=self.template, suffix=None, directory=None),
            "canonical_url": f"{self.origin}{self.path}",
            "page_title": title,
            "page_description": _page_description(shop, product, collection),
            "product": self.product,
            "collection": self.collection,
            "linklists": Drop({"main-menu": Drop(links=self._menu())}),
        }

    def _menu(self) -> list[Drop]:
        """The theme's main menu: home and the shop's first collections."""
        home = self.storefront.theme.env.locales.translate(self.locale, "general.home", {})
        links = [(home, self.root)] + [(c.title, f"{self.root}collections/{c.handle}")
                                       for c in self.shop.catalogue.collections[:MENU_COLLECTIONS]]
        return [Drop(title=title, url=url, active=url == self.path) for title, url in links]

    # -- rendering --
    def render(self) -> str:
        if self.fixed is not None and self.fixed not in FIXED_ELEMENTS:
            raise StorefrontError(f"?{FIXED_PARAM} must be one of {', '.join(FIXED_ELEMENTS)}, not {self.fixed!r}")
        theme = self.storefront.theme
        spec = theme.template(self.template)
        content = "".join(self.render_section(key, spec["sections"][key]) for key in spec.get("order", []))
        head_embeds = self.render_embeds()
        header = self.shopify_script() + "".join(self.head.values()) + head_embeds
        html = theme.layout().render(**self.globals, content_for_layout=content, content_for_header=header)
        if self.embed_tail:
            at = html.rfind("</body>")
            tail = "".join(self.embed_tail)
            html = html[:at] + tail + html[at:] if at >= 0 else html + tail
        return html

    def render_section(self, key: str, spec: Mapping[str, Any]) -> str:
        template, schema = self.storefront.theme.section(str(spec["type"]))
        section_id = f"{SECTION_PREFIX}{key}"
        blocks: list[Any] = []
        if not self.blocks_taken and any(b.get("type") == "@app" for b in schema.get("blocks") or []):
            blocks, self.blocks_taken = self.app_blocks(section_id), True
        return self._section(template, schema, section_id, spec.get("settings") or {}, blocks)

    def render_static_section(self, name: str) -> str:
        template, schema = self.storefront.theme.section(name)
        return self._section(template, schema, name, {}, [])

    def _section(self, template: Any, schema: Mapping[str, Any], section_id: str, given: Mapping[str, Any],
                 blocks: list[Any]) -> str:
        settings = {}
        for setting in schema.get("settings") or []:
            if isinstance(setting, Mapping) and "id" in setting:
                value = given.get(setting["id"], setting.get("default"))
                settings[str(setting["id"])] = self.resource(setting, value, autofill=False)
        section = Drop(id=section_id, settings=settings, blocks=blocks)
        inner = template.render(**self.globals, section=section)
        return f'<div id="shopify-section-{section_id}" class="shopify-section">{inner}</div>'

    def resource(self, setting: Mapping[str, Any], value: Any, *, autofill: bool) -> Any:
        """A setting's value as Liquid sees it: product and collection handles become objects (or nil), and an
        empty `autofill` resource setting takes the page's product or collection."""
        kind = setting.get("type")
        if kind == "product":
            found = self.shop.catalogue.by_handle(value) if isinstance(value, str) and value else None
            if found is not None and listed_ok(found):
                return product_drop(found, self.market, self.root)
            return self.product if autofill and setting.get("autofill") and not value else None
        if kind == "collection":
            found_c = next((c for c in self.shop.catalogue.collections if c.handle == value), None) if value else None
            if found_c is not None:
                return CollectionDrop(self.shop, found_c, self.market, self.root)
            return self.collection if autofill and setting.get("autofill") and not value else None
        if value == "" and kind in ("text", "textarea", "richtext", "inline_richtext", "url", "html"):
            return None
        return value

    def app_blocks(self, section_id: str, template: str | None = None) -> list[AppBlockDrop]:
        if not self.apps_on:
            return []
        template = template or self.template
        extension = self.storefront.extension
        made = []
        for n, entry in enumerate(self.storefront.blocks_for(self.shop, template), 1):
            definition = extension.block(entry["type"])
            if definition is None or not definition.shown_on(self.template):
                continue
            given = dict(entry.get("settings") or {})
            for key, text in self.overrides.items():
                if any(s["id"] == key for s in definition.settings):
                    given[key] = parse_override(definition, key, text)
            settings = {str(s["id"]): self.resource(s, given.get(s["id"], s.get("default")), autofill=True)
                        for s in definition.settings}
            block_id = entry.get("id") or default_block_id(definition.handle, template, n)
            attributes = ""
            if self.design_mode:
                info = json_filter({"id": block_id, "type": f"shopify://apps/lumi/blocks/{definition.handle}"})
                attributes = f'data-shopify-editor-block="{escape(info)}"'
            made.append(AppBlockDrop({"id": block_id, "type": "@app", "settings": settings,
                                      "shopify_attributes": attributes}, definition, section_id))
        return made

    def render_app_block(self, block: AppBlockDrop) -> str:
        definition: BlockDefinition = block.definition
        for url in map(self.storefront.extension.env.asset_url, definition.assets("stylesheet")):
            self.head.setdefault(url, f'<link rel="stylesheet" href="{escape(url)}">')
        for url in map(self.storefront.extension.env.asset_url, definition.assets("javascript")):
            self.head.setdefault(url, f'<script src="{escape(url)}" defer></script>')
        name = f"blocks/{definition.path.name}"
        try:
            template = self.storefront.extension.env.load(definition.path, name)
            body = template.render(**self.globals, block=block,
                                   section=Drop(id=block.section_id))
        except LiquidError as err:  # Shopify shows a Liquid error in place of the block
            body = f"<p class=\"devshop-liquid-error\">Liquid error ({escape(name)}): {escape(str(err))}</p>"
        tag = definition.schema.get("tag", "div")
        if tag is None:  # "tag": null renders the block without a wrapper
            return body
        classes = " ".join(c for c in ("shopify-block shopify-app-block", definition.schema.get("class")) if c)
        return (f'<{tag} id="shopify-block-{escape(block["id"])}" class="{escape(classes)}" '
                f'data-block-handle="{escape(definition.handle)}">{body}</{tag}>')

    def render_embeds(self) -> str:
        """App embeds: `body` ones go before </body> (kept in embed_tail), `head` ones are returned for <head>."""
        head: list[str] = []
        for block in self.app_blocks("embeds", EMBEDS):
            html = self.render_app_block(block)
            (self.embed_tail if block.definition.target == "body" else head).append(html)
        return "".join(head)

    def shopify_script(self) -> str:
        values = [
            f"Shopify.shop={json_filter(self.shop.domain)};",
            f"Shopify.locale={json_filter(self.locale)};",
            f"Shopify.currency={json_filter({'active': self.currency, 'rate': str(self.market.rate)})};",
            f"Shopify.country={json_filter(self.country)};",
            f"Shopify.routes=Shopify.routes||{{}};Shopify.routes.root={json_filter(self.root)};",
        ]
        if self.design_mode:
            values.append("Shopify.designMode=true;")
        return "<script>window.Shopify=window.Shopify||{};" + "".join(values) + "</script>"


def customer_drop(customer: Customer | None) -> Drop | None:
    """Liquid's `customer`: nil for a guest, as on Shopify."""
    if customer is None:
        return None
    return Drop(id=customer.id, email=customer.email, first_name=customer.first_name, last_name=customer.last_name,
                name=customer.name)


def _page_description(shop: Shop, product: Product | None, collection: Collection | None) -> str:
    if product is not None:
        return f"{product.title} by {product.vendor} at {shop.name}."
    if collection is not None:
        return f"{collection.title} at {shop.name}."
    return f"{shop.name}: new arrivals, best sellers and more."


# ---- routes --------------------------------------------------------------------------------------------------------

def _no_shop(shop_domain: str) -> Response:
    return plain_error("Not found", f"There is no store at {shop_domain}.", 404)


def _page(shop: Shop, template: str) -> Page:
    state = get_state()
    return Page(state.storefront, shop, template, request.args, origin=request.host_url.rstrip("/"),
                path=request.path, installed=state.tokens.installed(shop.domain), customer=current_customer(shop))


def _respond(page: Page, status: int = 200) -> Response:
    try:
        html = page.render()
    except StorefrontError as err:
        return plain_error("Bad request", str(err), 400)
    except LiquidError as err:
        return plain_error("Liquid error", str(err), 500)
    response = Response(html, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-cache"
    return response


def _not_found(shop: Shop) -> Response:
    page = _page(shop, "404")
    page.setup()
    return _respond(page, 404)


@bp.get("/shops/<shop_domain>/")
def home(shop_domain: str) -> Response:
    shop = get_state().shops.get(shop_domain)
    if shop is None:
        return _no_shop(shop_domain)
    page = _page(shop, "index")
    page.setup()
    return _respond(page)


@bp.get("/shops/<shop_domain>/products/<handle>")
def product_page(shop_domain: str, handle: str) -> Response:
    shop = get_state().shops.get(shop_domain)
    if shop is None:
        return _no_shop(shop_domain)
    product = shop.catalogue.by_handle(handle)
    if product is None or not listed_ok(product):
        return _not_found(shop)
    page = _page(shop, "product")
    page.setup(product=product)
    return _respond(page)


@bp.get("/shops/<shop_domain>/collections/<handle>")
def collection_page(shop_domain: str, handle: str) -> Response:
    shop = get_state().shops.get(shop_domain)
    if shop is None:
        return _no_shop(shop_domain)
    collection = next((c for c in shop.catalogue.collections if c.handle == handle), None)
    if collection is None:
        return _not_found(shop)
    page = _page(shop, "collection")
    page.setup(collection=collection)
    return _respond(page)


def _asset(directory: Path, filename: str) -> Response:
    # Read whole (theme and extension assets are a few KB) rather than streamed from an open file: a browser that
    # navigates away mid-response left the dev server's file handle to the garbage collector.
    path = safe_join(str(directory), filename)
    if path is None or not os.path.isfile(path):
        abort(404)
    response = Response(Path(path).read_bytes(), mimetype=mimetypes.guess_type(path)[0] or "application/octet-stream")
    response.add_etag()
    response.cache_control.max_age = ASSET_MAX_AGE
    response.make_conditional(request)
    response.cache_control.public = True
    response.cache_control.immutable = True
    response.headers["Access-Control-Allow-Origin"] = "*"  # as Shopify's CDN answers
    return response


@bp.get("/cdn/extensions/<handle>/assets/<path:filename>")
def extension_asset(handle: str, filename: str) -> Response:
    """Shopify's CDN for the extension's assets/ (long-cached: asset_url adds a content version)."""
    extension = get_state().storefront.extension
    if handle != extension.handle:
        abort(404)
    return _asset(extension.directory / "assets", filename)


@bp.get(f"{THEME_ASSETS}<path:filename>")
def theme_asset(filename: str) -> Response:
    return _asset(get_state().storefront.theme.directory / "assets", filename)

