"""Shopify's app proxy: storefront paths under /{prefix}/{subpath} forwarded to the app, signed.

Whether Shopify's proxy passes a streamed answer (Server-Sent Events) through as it is written or buffers it whole is
not documented, so devshop does both: by default the app's answer streams through chunk by chunk as it arrives;
with buffering on (`POST /_devshop/proxy {"buffer": true}`, `python -m devshop --proxy-buffer` or config
`APP_PROXY_BUFFER`) devshop reads the whole answer first and sends it at once with a Content-Length.

The logged-in customer (`logged_in_customer_id`) is the request header X-Devshop-Customer-Id, else the customer of
devshop's storefront login cookie (customers.py); neither reaches the app (Shopify strips every cookie).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import requests
from flask import Flask, Response, request

from devshop.customers import current_customer_id
from devshop.pages import plain_error
from devshop.state import get_state
from devshop.webhooks import rebase

PREFIXES = ("apps", "a", "community", "tools")  # the prefixes a merchant may pick
SUBPATH = re.compile(r"^[A-Za-z0-9_-]{1,30}$")
RESERVED_SUBPATHS = frozenset({"admin", "services", "password", "login"})
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
DEFAULT_TIMEOUT = 10.0  # seconds; Shopify's own proxy timeout is not documented
STREAM_READ_SIZE = 64 * 1024  # at most this many bytes per chunk passed on; a chunk goes as soon as any bytes come

# The parameters Shopify adds; a shopper cannot supply their own (they are replaced, never doubled).
ADDED_PARAMS = frozenset({"shop", "logged_in_customer_id", "path_prefix", "timestamp", "signature"})
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
                        "proxy-connection", "te", "trailer", "trailers", "transfer-encoding", "upgrade"})
# Request headers not passed on: the shopper's cookies (Shopify strips Cookie), the ones a proxy sets
# itself, and devshop's own test hooks (any X-Devshop-*).
DROPPED_REQUEST_HEADERS = HOP_BY_HOP | {"cookie", "host", "content-length", "x-forwarded-for",
                                        "x-forwarded-host", "x-forwarded-proto", "forwarded"}
# Response headers not passed back: Set-Cookie (documented: Shopify strips it), hop-by-hop ones, and the
# ones the proxy's own server writes (Content-Length, Date, Server). Shopify's page mentions more
# "disallowed headers" without a list we could confirm, so nothing else is removed.
DROPPED_RESPONSE_HEADERS = HOP_BY_HOP | {"set-cookie", "content-length", "date", "server"}

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AppProxy:
    url: str  # the app's proxy URL, rebased onto APP_URL
    prefix: str
    subpath: str

    @property
    def path_prefix(self) -> str:
        return f"/{self.prefix}/{self.subpath}"

    @classmethod
    def from_config(cls, raw: Mapping[str, Any] | None, app_url: str | None) -> AppProxy | None:
        """From [app_proxy] (url, prefix, subpath), checked as the Partner Dashboard checks it."""
        if not raw or not app_url:
            return None
        url, prefix, subpath = str(raw.get("url") or ""), str(raw.get("prefix") or "apps"), str(
            raw.get("subpath") or "")
        if prefix not in PREFIXES:
            raise ValueError(f"app_proxy prefix must be one of {', '.join(PREFIXES)}, got {prefix!r}")
        if not SUBPATH.match(subpath) or subpath.lower() in RESERVED_SUBPATHS:
            raise ValueError(f"app_proxy subpath must be 1-30 letters, digits, _ or -, and not "
                             f"{'/'.join(sorted(RESERVED_SUBPATHS))}; got {subpath!r}")
        target = rebase(url, app_url) if url else None
        if not target:
            raise ValueError(f"app_proxy url must be an http(s) URL or a path, got {url!r}")
        return cls(target.rstrip("/"), prefix, subpath)

    def describe(self) -> dict[str, str]:
        return {"url": self.url, "prefix": self.prefix, "subpath": self.subpath, "path_prefix": self.path_prefix,
                "storefront_path": f"/shops/{{shop}}{self.path_prefix}"}


def proxy_signature(pairs: Sequence[tuple[str, str]], secret: str) -> str:
    """As Shopify documents it: values of a repeated key joined with ",", `key=value` strings sorted and
    concatenated with no separator, hex HMAC-SHA256 with the client secret. `signature` itself is left out."""
    grouped: dict[str, list[str]] = {}
    for key, value in pairs:
        if key != "signature":
            grouped.setdefault(key, []).append(value)
    message = "".join(sorted(f"{key}={','.join(values)}" for key, values in grouped.items()))
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def register(app: Flask, proxy: AppProxy | None) -> None:
    """Routes for the configured prefix and subpath only (they are fixed for the life of the app)."""
    if proxy is None:
        return
    base = f"/shops/<shop_domain>{proxy.path_prefix}"
    app.add_url_rule(base, "devshop_app_proxy", forward, methods=METHODS)
    app.add_url_rule(base + "/", "devshop_app_proxy_slash", forward, methods=METHODS)
    app.add_url_rule(base + "/<path:rest>", "devshop_app_proxy_rest", forward, methods=METHODS)


def forward(shop_domain: str, rest: str = "") -> Response:
    state = get_state()
    proxy = state.app_proxy
    assert proxy is not None  # the routes exist only when there is a proxy
    shop = state.shops.get(shop_domain)
    if shop is None:
        return plain_error("Not found", f"There is no store at {shop_domain}.", 404)
    if not state.tokens.installed(shop.domain):
        # Like a storefront whose app was never installed (or was removed): the proxy path does not exist.
        return plain_error("Not found", f"{state.app_name} is not installed on {shop.domain}, so "
                           f"{proxy.path_prefix} is not proxied (install it through OAuth or "
                           f"POST /_devshop/shops/{shop.domain}/access-tokens).", 404)
    tail = request.path[len(f"/shops/{shop_domain}{proxy.path_prefix}"):]
    pairs = [(k, v) for k, v in parse_qsl(request.query_string.decode("utf-8", "replace"), keep_blank_values=True)
             if k not in ADDED_PARAMS]
    # The header (any id, a test hook) or devshop's login cookie; "" for a guest, as Shopify sends it.
    pairs += [("shop", shop.domain), ("logged_in_customer_id", current_customer_id(shop)),
              ("path_prefix", proxy.path_prefix), ("timestamp", str(int(time.time())))]
    pairs.append(("signature", proxy_signature(pairs, state.api_secret)))
    target = proxy.url + quote(tail, safe="/:@!$&'()*+,;=-._~") + "?" + urlencode(pairs)

    headers = {name: value for name, value in request.headers.items()
               if name.lower() not in DROPPED_REQUEST_HEADERS and not name.lower().startswith("x-devshop-")}
    headers["X-Forwarded-For"] = request.remote_addr or "127.0.0.1"
    headers["X-Forwarded-Host"] = shop.domain
    headers.setdefault("Accept-Encoding", "identity")  # pass the body through exactly as the app encodes it
    body = request.get_data()
    try:
        upstream = requests.request(request.method, target, data=body or None, headers=headers,
                                    allow_redirects=False, stream=True, timeout=(2.0, state.app_proxy_timeout))
    except requests.Timeout:
        return plain_error("Gateway timeout", f"The app did not answer {proxy.url} in time.", 504)
    except requests.RequestException as err:
        return plain_error("Bad gateway", f"The app could not be reached at {proxy.url}: {type(err).__name__}", 502)
    passed = [(k, v) for k, v in upstream.raw.headers.items() if k.lower() not in DROPPED_RESPONSE_HEADERS]
    if state.app_proxy_buffer:
        try:
            content = upstream.raw.read(decode_content=False)
        except Exception as err:  # the app hung up mid-body
            return plain_error("Bad gateway", f"The app's answer was cut short: {type(err).__name__}", 502)
        finally:
            upstream.close()
        response = Response(content, status=upstream.status_code, headers=passed)  # Content-Length: the whole body
    else:
        # The same bytes, unchanged, so the app's own Content-Length (when it sent one) still holds.
        length = upstream.raw.headers.get("Content-Length")
        if length is not None:
            passed.append(("Content-Length", length))
        response = Response(_relay(upstream), status=upstream.status_code, headers=passed, direct_passthrough=True)
    if not any(k.lower() == "content-type" for k, _ in passed):
        del response.headers["Content-Type"]
    return response


def _relay(upstream: requests.Response) -> Iterator[bytes]:
    """The app's body as it arrives: read1 hands over whatever bytes are there instead of waiting for a full
    buffer, so each event of a Server-Sent Events stream reaches the shopper when the app writes it."""
    try:
        while chunk := upstream.raw.read1(STREAM_READ_SIZE, decode_content=False):
            yield chunk
    except Exception as err:
        # The headers are out: all devshop can do is end the connection early, as a proxy would, so the shopper
        # sees a cut-short answer rather than a complete-looking one.
        log.warning("app proxy: the app's streamed answer was cut short: %s", type(err).__name__)
        raise
    finally:
        upstream.close()
