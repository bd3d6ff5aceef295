"""OAuth as Shopify runs it: authorize redirect with hmac, and the code, token-exchange and refresh grants."""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, Response, redirect, request
from flask.typing import ResponseReturnValue

from devshop.state import get_state

bp = Blueprint("devshop_oauth", __name__)

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
OFFLINE_TOKEN = "urn:shopify:params:oauth:token-type:offline-access-token"
ONLINE_TOKEN = "urn:shopify:params:oauth:token-type:online-access-token"
REFRESH_TOKEN_TTL = 90 * 86400  # refresh tokens live 90 days (changelog, 2026-08-28)
REFRESH_RETRY_WINDOW = 30 * 86400  # a used refresh token may be retried for up to 30 days
CODE_TTL = 600
ONLINE_TTL = 86399
SESSION_TOKEN_LEEWAY = 10  # seconds, as Shopify's own libraries allow
DEFAULT_APP_SCOPES = "read_products,read_orders"
UNRESERVED = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789*-._")


def _encode(text: str) -> str:
    """Percent-encode like URLSearchParams, but with space as %20 (Shopify's hmac message format)."""
    out = []
    for ch in text:
        if ch in UNRESERVED:
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode())
    return "".join(out)


def hmac_message(params: dict[str, str]) -> str:
    return "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(params.items()) if k not in ("hmac", "signature"))


def oauth_hmac(params: dict[str, str], secret: str) -> str:
    """Hex HMAC-SHA256 over the sorted, percent-encoded query minus hmac/signature."""
    return hmac.new(secret.encode(), hmac_message(params).encode(), hashlib.sha256).hexdigest()


def host_param(shop: str) -> str:
    return base64.b64encode(f"admin.shopify.com/store/{shop.split('.', 1)[0]}".encode()).decode()


@dataclass
class AccessToken:
    token: str
    shop: str
    scope: str
    expires_at: float | None
    online: bool = False
    refresh: str | None = None  # the refresh token issued alongside
    used: bool = False

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(s.strip() for s in self.scope.split(",") if s.strip())


@dataclass
class RefreshToken:
    token: str
    shop: str
    scope: str
    expires_at: float
    predecessor: str | None = None
    first_used_at: float | None = None
    retired: bool = False


@dataclass
class Grant:
    code: str
    shop: str
    scope: str
    online: bool
    issued_at: float


class OAuthError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


class TokenStore:
    """Access tokens, refresh tokens and authorization codes for every shop."""

    def __init__(self, clock: Any, token_ttl: float) -> None:
        self.clock = clock
        self.token_ttl = token_ttl
        self._access: dict[str, AccessToken] = {}
        self._refresh: dict[str, RefreshToken] = {}
        self._codes: dict[str, Grant] = {}
        self._lock = threading.Lock()

    def issue(self, shop: str, scope: str, expiring: bool, prefix: str = "shpua_",
              predecessor: str | None = None) -> dict[str, Any]:
        now = self.clock()
        token = prefix + secrets.token_hex(16)
        with self._lock:
            if not expiring:
                self._access[token] = AccessToken(token, shop, scope, None)
                return {"access_token": token, "scope": scope}
            refresh = "shprt_" + secrets.token_hex(16)
            self._refresh[refresh] = RefreshToken(refresh, shop, scope, now + REFRESH_TOKEN_TTL, predecessor)
            self._access[token] = AccessToken(token, shop, scope, now + self.token_ttl, refresh=refresh)
        return {"access_token": token, "scope": scope, "expires_in": int(self.token_ttl),
                "refresh_token": refresh, "refresh_token_expires_in": REFRESH_TOKEN_TTL}

    def issue_online(self, shop: str, scope: str, user_id: int) -> dict[str, Any]:
        token = "shpua_" + secrets.token_hex(16)
        with self._lock:
            self._access[token] = AccessToken(token, shop, scope, self.clock() + ONLINE_TTL, online=True)
        return {
            "access_token": token, "scope": scope, "expires_in": ONLINE_TTL, "associated_user_scope": scope,
            "session": secrets.token_hex(16),
            "associated_user": {"id": user_id, "first_name": "Dev", "last_name": "Owner",
                                "email": f"owner@{shop.split('.', 1)[0]}.example.com", "account_owner": True,
                                "locale": "en", "collaborator": False, "email_verified": True},
        }

    def authenticate(self, shop: str, token: str) -> AccessToken | None:
        with self._lock:
            found = self._access.get(token)
            if found is None or found.shop != shop:
                return None
            if found.expires_at is not None and self.clock() >= found.expires_at:
                return None
            if not found.used:
                found.used = True
                # Using the new pair retires the refresh token that produced it.
                rt = self._refresh.get(found.refresh or "")
                if rt and rt.predecessor and rt.predecessor in self._refresh:
                    self._refresh[rt.predecessor].retired = True
            return found

    def new_code(self, shop: str, scope: str, online: bool) -> str:
        code = secrets.token_hex(16)
        with self._lock:
            self._codes[code] = Grant(code, shop, scope, online, self.clock())
        return code

    def redeem(self, shop: str, code: str) -> Grant:
        with self._lock:
            grant = self._codes.pop(code, None)  # single use, even when it fails below
        if grant is None or grant.shop != shop or self.clock() - grant.issued_at > CODE_TTL:
            raise OAuthError("invalid_request", "The authorization code was not found or was already used")
        return grant

    def refresh(self, shop: str, token: str) -> dict[str, Any]:
        now = self.clock()
        with self._lock:
            rt = self._refresh.get(token)
            invalid = (rt is None or rt.shop != shop or rt.retired or now >= rt.expires_at
                       or (rt.first_used_at is not None and now - rt.first_used_at > REFRESH_RETRY_WINDOW))
            if invalid or rt is None:
                raise OAuthError("invalid_grant", "The refresh token is invalid, expired or has been replaced")
            if rt.first_used_at is None:
                rt.first_used_at = now
            # Using a replacement retires the token it replaced (changelog 2026-08-28).
            if rt.predecessor and rt.predecessor in self._refresh:
                self._refresh[rt.predecessor].retired = True
            scope = rt.scope
        return self.issue(shop, scope, expiring=True, predecessor=token)

    def installed(self, shop: str) -> bool:
        """The app is installed while the shop has a live access token or a usable refresh token."""
        now = self.clock()
        with self._lock:
            if any(a.shop == shop and (a.expires_at is None or now < a.expires_at) for a in self._access.values()):
                return True
            return any(r.shop == shop and not r.retired and now < r.expires_at for r in self._refresh.values())

    def revoke_shop(self, shop: str) -> int:
        with self._lock:
            doomed = [t for t, a in self._access.items() if a.shop == shop]
            for t in doomed:
                del self._access[t]
            for r in [t for t, rt in self._refresh.items() if rt.shop == shop]:
                del self._refresh[r]
        return len(doomed)


def _error_page(message: str, status: int = 400) -> Response:
    body = (f"<!DOCTYPE html><html><head><title>Oauth error</title></head><body>"
            f"<h1>Oauth error invalid_request</h1><p>{html.escape(message)}</p></body></html>")
    return Response(body, status=status, mimetype="text/html")


AUTHORIZE_MODES = ("auto", "page")
APPROVAL_TTL = 600  # seconds an approval page stays valid
SCOPE_DESCRIPTIONS = {
    "read_products": "View products, variants and collections",
    "write_products": "Edit products, variants and collections",
    "read_orders": "View orders, transactions and fulfillments (last 60 days)",
    "read_all_orders": "View all orders, not only the last 60 days",
    "read_inventory": "View inventory and locations",
    "write_inventory": "Edit inventory",
    "read_customers": "View customers",
    "write_app_proxy": "Serve pages on the online store through an app proxy",
}


@dataclass
class Approval:
    shop: str
    params: dict[str, Any]  # client_id, scope, redirect_uri, state (optional), online
    created: float


class PendingApprovals:
    """Approval pages shown and not yet answered: the Install button must present one of these ids."""

    def __init__(self) -> None:
        self._pending: dict[str, Approval] = {}
        self._lock = threading.Lock()

    def add(self, shop: str, params: dict[str, Any]) -> str:
        approval_id = secrets.token_urlsafe(24)
        now = time.monotonic()
        with self._lock:
            for stale in [k for k, a in self._pending.items() if now - a.created > APPROVAL_TTL]:
                del self._pending[stale]
            self._pending[approval_id] = Approval(shop, params, now)
        return approval_id

    def take(self, shop: str, approval_id: str) -> Approval | None:
        with self._lock:
            approval = self._pending.pop(approval_id, None)
        if approval is None or approval.shop != shop or time.monotonic() - approval.created > APPROVAL_TTL:
            return None
        return approval


def _authorization_request(state: Any) -> dict[str, Any] | Response:
    """The checks Shopify makes before it shows or grants anything: client_id and redirect_uri."""
    args = request.args
    if args.get("client_id") != state.api_key:
        return _error_page("The client_id is invalid.")
    redirect_uri = args.get("redirect_uri", "")
    if not state.redirect_allowed(redirect_uri):
        return _error_page("The redirect_uri is not whitelisted.")
    params: dict[str, Any] = {"client_id": state.api_key, "scope": args.get("scope", ""),
                              "redirect_uri": redirect_uri,
                              "online": "per-user" in args.getlist("grant_options[]")}
    if "state" in args:
        params["state"] = args["state"]
    return params


def _grant(state: Any, shop: str, params: dict[str, Any]) -> ResponseReturnValue:
    """Approved: a fresh code, and back to the app with code, hmac, host, shop, state and timestamp."""
    code = state.tokens.new_code(shop, params["scope"], bool(params["online"]))
    query = {"code": code, "host": host_param(shop), "shop": shop, "timestamp": str(int(time.time()))}
    if "state" in params:
        query["state"] = params["state"]
    query["hmac"] = oauth_hmac(query, state.api_secret)
    redirect_uri = params["redirect_uri"]
    joiner = "&" if urlsplit(redirect_uri).query else "?"
    return redirect(redirect_uri + joiner + urlencode(query), code=302)


@bp.get("/shops/<shop_domain>/admin/oauth/authorize")
def authorize(shop_domain: str) -> ResponseReturnValue:
    """A dev-store owner asked to install the app: approve at once ("auto") or show the approval page."""
    state = get_state()
    shop = state.shops.get(shop_domain)
    if shop is None:
        return _error_page("There is no store with that domain.", 404)
    params = _authorization_request(state)
    if isinstance(params, Response):
        return params
    if state.authorize_mode == "auto":
        return _grant(state, shop.domain, params)
    return _approval_page(state, shop, params, state.approvals.add(shop.domain, params))


@bp.post("/shops/<shop_domain>/admin/oauth/authorize")
def approve(shop_domain: str) -> ResponseReturnValue:
    """The approval page's Install button."""
    state = get_state()
    shop = state.shops.get(shop_domain)
    if shop is None:
        return _error_page("There is no store with that domain.", 404)
    approval = state.approvals.take(shop.domain, str(request.form.get("approval", "")))
    if approval is None:
        return _error_page("This install request has expired or was already answered. Start the install again.")
    return _grant(state, shop.domain, approval.params)


def _approval_page(state: Any, shop: Any, params: dict[str, Any], approval_id: str) -> Response:
    from devshop.pages import admin_page

    app_name = html.escape(state.app_name)
    scopes = [s.strip() for s in str(params["scope"]).split(",") if s.strip()]
    items = "".join(f"<li><strong>{html.escape(SCOPE_DESCRIPTIONS.get(s, s))}</strong> "
                    f"<span class=\"muted\">({html.escape(s)})</span></li>" for s in scopes) or (
        "<li class=\"muted\">No access scopes requested</li>")
    access = "for you only (online access)" if params["online"] else "for this store (offline access)"
    body = (
        "<main><div class=\"card\">"
        f"<h1>Install {app_name}</h1>"
        f"<p>{app_name} is asking to be installed on <strong>{html.escape(shop.name)}</strong> "
        f"({html.escape(shop.domain)}), {access}. It will be able to:</p>"
        f"<ul id=\"scopes\">{items}</ul>"
        f"<form id=\"devshop-approve\" method=\"post\" "
        f"action=\"/shops/{html.escape(shop.domain)}/admin/oauth/authorize\">"
        f"<input type=\"hidden\" name=\"approval\" value=\"{html.escape(approval_id)}\">"
        "<button type=\"submit\">Install app</button></form>"
        f"<p class=\"muted\">You will be sent back to {html.escape(urlsplit(params['redirect_uri']).netloc)}.</p>"
        "</div></main>"
    )
    return admin_page(shop.domain, shop.name, f"Install {state.app_name}", body)


def _form() -> dict[str, Any]:
    data = request.get_json(silent=True)
    if isinstance(data, dict):
        return data
    return request.form.to_dict()


def _truthy(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes")


@bp.post("/shops/<shop_domain>/admin/oauth/access_token")
def access_token(shop_domain: str) -> Response:
    state = get_state()
    shop = state.shops.get(shop_domain)
    if shop is None:
        return Response('{"errors":"Not Found"}', status=404, mimetype="application/json")
    form = _form()
    try:
        if form.get("client_id") != state.api_key or form.get("client_secret") != state.api_secret:
            raise OAuthError("invalid_client",
                             "Client authentication failed: the client_id or client_secret is invalid")
        grant_type = form.get("grant_type")
        if grant_type in (None, "", "authorization_code"):
            if not form.get("code"):
                raise OAuthError("invalid_request", "The authorization code was not found or was already used")
            grant = state.tokens.redeem(shop.domain, str(form["code"]))
            if grant.online:
                body = state.tokens.issue_online(shop.domain, grant.scope, user_id=1)
            else:
                body = state.tokens.issue(shop.domain, grant.scope, _truthy(form.get("expiring", "0")))
        elif grant_type == TOKEN_EXCHANGE:
            body = _token_exchange(state, shop.domain, form)
        elif grant_type == "refresh_token":
            body = state.tokens.refresh(shop.domain, str(form.get("refresh_token") or ""))
        else:
            raise OAuthError("unsupported_grant_type", f"The grant type {grant_type!r} is not supported")
    except OAuthError as err:
        return state.json({"error": err.error, "error_description": err.description}, err.status)
    return state.json(body, 200)


def _token_exchange(state: Any, shop: str, form: dict[str, Any]) -> dict[str, Any]:
    subject = str(form.get("subject_token") or "")
    subject_type = form.get("subject_token_type") or ID_TOKEN_TYPE
    if subject_type != ID_TOKEN_TYPE:
        raise OAuthError("invalid_request", "subject_token_type must be urn:ietf:params:oauth:token-type:id_token")
    try:
        claims = decode_hs256(subject, state.api_secret, state.api_key)
    except ValueError as err:
        raise OAuthError("invalid_subject_token", f"Subject token is invalid: {err}") from err
    if urlsplit(str(claims["dest"])).hostname != shop:
        raise OAuthError("invalid_subject_token", "Subject token was issued for another shop")
    requested = form.get("requested_token_type") or OFFLINE_TOKEN
    scope = state.app_scopes
    if requested == ONLINE_TOKEN:
        return state.tokens.issue_online(shop, scope, user_id=int(claims["sub"]) if str(claims["sub"]).isdigit() else 1)
    if requested != OFFLINE_TOKEN:
        raise OAuthError("invalid_request", "requested_token_type is not supported")
    return state.tokens.issue(shop, scope, _truthy(form.get("expiring", "0")))


def session_token(api_key: str, api_secret: str, shop: str, user_id: int = 1, lifetime: int = 60,
                  now: float | None = None) -> str:
    """An App Bridge session token (ID token) as Shopify signs it, for tests and `make dev`."""
    issued = int(now if now is not None else time.time())
    claims = {
        "iss": f"https://{shop}/admin", "dest": f"https://{shop}", "aud": api_key, "sub": str(user_id),
        "exp": issued + lifetime, "nbf": issued, "iat": issued, "jti": secrets.token_hex(16),
        "sid": secrets.token_hex(16),
    }
    return encode_hs256(claims, api_secret)


# Session tokens are HS256 JWTs signed with the client secret. devshop signs and checks them itself:
# PyJWT warns about secrets shorter than 32 bytes, and dev secrets often are.
REQUIRED_CLAIMS = ("iss", "dest", "aud", "sub", "exp", "nbf", "iat", "jti", "sid")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_hs256(claims: dict[str, Any], secret: str) -> str:
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url(signature)}"


def decode_hs256(token: str, secret: str, audience: str, now: float | None = None) -> dict[str, Any]:
    """Verify like Shopify's libraries: HS256 only, aud = client id, 10 s leeway, all claims present."""
    try:
        header_b64, payload_b64, signature_b64 = token.split(".")
        header = json.loads(_unb64url(header_b64))
        claims = json.loads(_unb64url(payload_b64))
        signature = _unb64url(signature_b64)
    except (ValueError, TypeError) as err:
        raise ValueError("not a JWT") from err
    if not isinstance(header, dict) or header.get("alg") != "HS256" or not isinstance(claims, dict):
        raise ValueError("the algorithm must be HS256")
    expected = hmac.new(secret.encode(), f"{header_b64}.{payload_b64}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, signature):
        raise ValueError("signature verification failed")
    missing = [c for c in REQUIRED_CLAIMS if c not in claims]
    if missing:
        raise ValueError(f"missing claims: {', '.join(missing)}")
    moment = time.time() if now is None else now
    if moment > float(claims["exp"]) + SESSION_TOKEN_LEEWAY:
        raise ValueError("the token has expired")
    if moment < float(claims["nbf"]) - SESSION_TOKEN_LEEWAY:
        raise ValueError("the token is not yet valid")
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if audience not in audiences:
        raise ValueError("the audience is not this app")
    return claims
