"""Signature checks: exact message construction, tampering rejected, rotation, constant-time comparisons."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Callable
from typing import Any

import pytest

from shopify import signatures as sig
from shopify.session_tokens import SessionTokenError, decode_session_token, encode_session_token

SECRET = "hush"


def test_oauth_message_matches_shopifys_documented_construction() -> None:
    # shopify.dev "verify a request": code, shop, state, timestamp sorted, joined by &, hex HMAC-SHA256.
    pairs = [("shop", "some-shop.myshopify.com"), ("code", "0907a61c0c8d55e99db179b68161bc00"),
             ("timestamp", "1337178173"), ("state", "0.6784241404160823"), ("hmac", "ignored")]
    assert sig.oauth_message(pairs) == (
        b"code=0907a61c0c8d55e99db179b68161bc00&shop=some-shop.myshopify.com"
        b"&state=0.6784241404160823&timestamp=1337178173"
    )
    expected = hmac.new(SECRET.encode(), sig.oauth_message(pairs), hashlib.sha256).hexdigest()
    assert sig.verify_oauth_hmac([*pairs[:-1], ("hmac", expected)], [SECRET])


def test_oauth_escapes_delimiters_and_arrays_like_shopifys_python_library() -> None:
    pairs = [("a%b", "x&y"), ("k=v", "1%"), ("ids[]", "1"), ("ids[]", "2")]
    assert sig.oauth_message(pairs) == b'a%25b=x%26y&ids=["1", "2"]&k%3Dv=1%25'


@pytest.mark.parametrize("position", range(5))
def test_oauth_any_flipped_byte_fails(position: int) -> None:
    pairs = [("code", "abc"), ("host", "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUveA"), ("shop", "x.myshopify.com"),
             ("state", "s1"), ("timestamp", "1700000000")]
    signed = [*pairs, ("hmac", sig.sign_oauth(pairs, SECRET))]
    assert sig.verify_oauth_hmac(signed, [SECRET])
    key, value = pairs[position]
    tampered = list(signed)
    tampered[position] = (key, value[:-1] + chr(ord(value[-1]) ^ 1))
    assert not sig.verify_oauth_hmac(tampered, [SECRET])


def test_oauth_rejects_missing_duplicate_or_foreign_hmac() -> None:
    pairs = [("code", "abc"), ("shop", "x.myshopify.com")]
    good = sig.sign_oauth(pairs, SECRET)
    assert not sig.verify_oauth_hmac(pairs, [SECRET])
    assert not sig.verify_oauth_hmac([*pairs, ("hmac", good), ("hmac", good)], [SECRET])
    assert not sig.verify_oauth_hmac([*pairs, ("hmac", good)], ["other-secret"])
    assert not sig.verify_oauth_hmac([*pairs, ("shop", "y.myshopify.com"), ("hmac", good)], [SECRET])
    assert not sig.verify_oauth_hmac([*pairs, ("hmac", "zz" + good[2:] + "é")], [SECRET])
    # Rotation: the old secret still verifies while both are configured.
    assert sig.verify_oauth_hmac([*pairs, ("hmac", good)], ["new-secret", SECRET])


def test_proxy_signature_matches_shopifys_documented_example() -> None:
    # shopify.dev "Authenticate app proxies" (docs/apps/build/online-store/app-proxies/authenticate-app-proxies):
    # secret "hush", extra=1&extra=2, logged_in_customer_id=1, path_prefix=/apps/awesome_reviews,
    # timestamp=1317327555 → signature=4c68c8624d737112c91818c11017d24d334b… (the copy we could read is cut
    # after these 36 hex digits; 144 matching bits leave no doubt about the construction).
    pairs = [("extra", "1"), ("extra", "2"), ("shop", "shop-name.myshopify.com"),
             ("logged_in_customer_id", "1"), ("path_prefix", "/apps/awesome_reviews"), ("timestamp", "1317327555")]
    assert sig.proxy_message(pairs) == (
        b"extra=1,2logged_in_customer_id=1path_prefix=/apps/awesome_reviewsshop=shop-name.myshopify.com"
        b"timestamp=1317327555"
    )
    signature = sig.sign_proxy(pairs, SECRET)
    assert signature.startswith("4c68c8624d737112c91818c11017d24d334b")
    assert sig.verify_proxy_signature([*pairs, ("signature", signature)], [SECRET])


def test_proxy_rejects_tampering_extra_params_and_repeats() -> None:
    pairs = [("shop", "x.myshopify.com"), ("logged_in_customer_id", ""), ("path_prefix", "/apps/lumi"),
             ("timestamp", "1700000000")]
    signature = sig.sign_proxy(pairs, SECRET)
    assert sig.verify_proxy_signature([*pairs, ("signature", signature)], [SECRET])
    assert not sig.verify_proxy_signature(pairs, [SECRET])
    assert not sig.verify_proxy_signature([*pairs, ("q", "shoes"), ("signature", signature)], [SECRET])
    assert not sig.verify_proxy_signature(
        [*pairs, ("shop", "y.myshopify.com"), ("signature", signature)], [SECRET])
    assert not sig.verify_proxy_signature([*pairs, ("signature", signature), ("signature", signature)], [SECRET])
    assert not sig.verify_proxy_signature([*pairs, ("signature", signature.upper()[:-1] + "0")], [SECRET])


def test_webhook_hmac_over_raw_body() -> None:
    body = b'{"id": 1, "title": "Caf\xc3\xa9"}'
    header = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    assert sig.sign_webhook(body, SECRET) == header
    assert sig.verify_webhook_hmac(body, header, [SECRET])
    flipped = bytes([body[0] ^ 1]) + body[1:]
    assert not sig.verify_webhook_hmac(flipped, header, [SECRET])
    assert not sig.verify_webhook_hmac(body, None, [SECRET])
    assert not sig.verify_webhook_hmac(body, "not base64!!", [SECRET])
    assert not sig.verify_webhook_hmac(body, header, ["other"])


def test_timestamp_freshness() -> None:
    assert sig.timestamp_is_fresh("1000", 90, now=1080)
    assert not sig.timestamp_is_fresh("1000", 90, now=1091)
    assert not sig.timestamp_is_fresh("2000", 90, now=1000)
    assert not sig.timestamp_is_fresh("abc", 90, now=1000)
    assert not sig.timestamp_is_fresh(None, 90, now=1000)


def test_oauth_accepts_the_javascript_librarys_encoding_of_padded_host() -> None:
    # `host` is base64 and may end in `=`; Shopify's JS library percent-encodes it, its Python one does not.
    pairs = [("code", "c"), ("host", "b3RoZXIubXlzaG9waWZ5LmNvbS9hZG1pbg=="), ("shop", "other.myshopify.com"),
             ("state", "s"), ("timestamp", "1700000000")]
    encoded = hmac.new(SECRET.encode(), sig.oauth_message_encoded(pairs), hashlib.sha256).hexdigest()
    assert b"host=b3RoZXIubXlzaG9waWZ5LmNvbS9hZG1pbg%3D%3D" in sig.oauth_message_encoded(pairs)
    assert sig.verify_oauth_hmac([*pairs, ("hmac", encoded)], [SECRET])
    assert sig.verify_oauth_hmac([*pairs, ("hmac", sig.sign_oauth(pairs, SECRET))], [SECRET])
    tampered = [(k, "other" if k == "code" else v) for k, v in pairs]
    assert not sig.verify_oauth_hmac([*tampered, ("hmac", encoded)], [SECRET])


# --- Client-secret rotation: every check takes (current, previous) -------------------------------------------
# Secrets of 32+ bytes: PyJWT warns (an error under our warning filter) about shorter HS256 keys.
CURRENT = "shpss_new-client-secret-0123456789abcdef"
PREVIOUS = "shpss_old-client-secret-0123456789abcdef"
THIRD = "shpss_unrelated-secret-0123456789abcdef0"
ROTATING = (CURRENT, PREVIOUS)
API_KEY = "rotation-client-id"
SHOP = "rotation-shop.myshopify.com"
OAUTH_PAIRS = [("code", "0907a61c0c8d55e99db179b68161bc00"),
               ("host", "YWRtaW4uc2hvcGlmeS5jb20vc3RvcmUvcm90YXRpb24tc2hvcA"), ("shop", SHOP), ("state", "s1"),
               ("timestamp", "1700000000")]
PROXY_PAIRS = [("shop", SHOP), ("logged_in_customer_id", "7001"), ("path_prefix", "/apps/lumi"),
               ("timestamp", "1700000000")]
WEBHOOK_BODY = b'{"id": 632910392, "title": "Lamp"}'


def _session_token(secret: str) -> str:
    import time

    return encode_session_token(SHOP, api_key=API_KEY, secret=secret, now=int(time.time()))


def _session_token_valid(token: str, secrets: tuple[str, ...]) -> bool:
    """False only for a refused signature: any other refusal (expiry, claims) fails the test loudly."""
    try:
        return decode_session_token(token, api_key=API_KEY, secrets=secrets).shop == SHOP
    except SessionTokenError as err:
        if err.code == "bad_signature":
            return False
        raise


def _flip_payload(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["dest"] = "https://victim-shop.myshopify.com"
    claims["iss"] = "https://victim-shop.myshopify.com/admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"{header}.{forged}.{signature}"


# name → (sign with a secret, verify under secrets, tamper with a signed artifact)
SURFACES: dict[str, tuple[Callable[[str], Any], Callable[[Any, tuple[str, ...]], bool], Callable[[Any], Any]]] = {
    "oauth": (
        lambda secret: [*OAUTH_PAIRS, ("hmac", sig.sign_oauth(OAUTH_PAIRS, secret))],
        sig.verify_oauth_hmac,
        lambda pairs: [(k, "s2" if k == "state" else v) for k, v in pairs],
    ),
    "webhook": (
        lambda secret: (WEBHOOK_BODY, sig.sign_webhook(WEBHOOK_BODY, secret)),
        lambda signed, secrets: sig.verify_webhook_hmac(signed[0], signed[1], secrets),
        lambda signed: (signed[0].replace(b"Lamp", b"Lump"), signed[1]),
    ),
    "app_proxy": (
        lambda secret: [*PROXY_PAIRS, ("signature", sig.sign_proxy(PROXY_PAIRS, secret))],
        sig.verify_proxy_signature,
        lambda pairs: [(k, "7002" if k == "logged_in_customer_id" else v) for k, v in pairs],
    ),
    "session_token": (_session_token, _session_token_valid, _flip_payload),
}


@pytest.mark.parametrize("surface", SURFACES)
def test_each_check_accepts_the_current_secret_alone_and_during_a_rotation(surface: str) -> None:
    sign, verify, _ = SURFACES[surface]
    signed = sign(CURRENT)
    assert verify(signed, (CURRENT,))
    assert verify(signed, ROTATING)


@pytest.mark.parametrize("surface", SURFACES)
def test_each_check_accepts_the_previous_secret_only_while_it_is_configured(surface: str) -> None:
    sign, verify, _ = SURFACES[surface]
    signed = sign(PREVIOUS)
    assert verify(signed, ROTATING)
    assert not verify(signed, (CURRENT,))  # rotation over: the old secret no longer signs anything


@pytest.mark.parametrize("surface", SURFACES)
def test_each_check_refuses_a_third_secret(surface: str) -> None:
    sign, verify, _ = SURFACES[surface]
    assert not verify(sign(THIRD), ROTATING)


@pytest.mark.parametrize("secret", [CURRENT, PREVIOUS], ids=["current", "previous"])
@pytest.mark.parametrize("surface", SURFACES)
def test_each_check_refuses_tampered_input_under_either_secret(surface: str, secret: str) -> None:
    sign, verify, tamper = SURFACES[surface]
    signed = sign(secret)
    assert verify(signed, ROTATING)
    assert not verify(tamper(signed), ROTATING)


@pytest.mark.parametrize("surface", SURFACES)
def test_a_match_under_the_previous_secret_is_logged_without_any_secret(
    surface: str, caplog: pytest.LogCaptureFixture
) -> None:
    from core.logs import JsonFormatter

    sign, verify, _ = SURFACES[surface]
    caplog.set_level(logging.INFO, logger="shopify.signatures")
    assert verify(sign(CURRENT), ROTATING)
    assert not [r for r in caplog.records if getattr(r, "event", None) == "previous_secret_used"]

    old = sign(PREVIOUS)
    assert verify(old, ROTATING)
    (record,) = [r for r in caplog.records if getattr(r, "event", None) == "previous_secret_used"]
    assert record.surface == surface  # type: ignore[attr-defined]
    line = JsonFormatter().format(record)
    assert json.loads(line)["msg"] == "signature verified with previous secret"
    for secret_text in (CURRENT, PREVIOUS, "shpss_"):
        assert secret_text not in line
    signature = old.split(".")[-1] if surface == "session_token" else (
        old[1] if surface == "webhook" else old[-1][1])
    assert signature not in line

    # A refused request is not counted as a use of the previous secret.
    caplog.clear()
    assert not verify(sign(THIRD), ROTATING)
    assert not [r for r in caplog.records if getattr(r, "event", None) == "previous_secret_used"]


@pytest.mark.parametrize("surface", SURFACES)
def test_every_secret_is_computed_and_compared_whichever_one_matches(
    surface: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No early exit: the same HMACs and constant-time comparisons whether the current secret, the previous one
    # or neither matched, so response timing says nothing about which secret (if any) signed the request.
    from types import SimpleNamespace

    sign, verify, _ = SURFACES[surface]
    counted = {"hmac": 0, "compare": 0}

    def new(key: bytes, msg: bytes, digestmod: Any) -> Any:
        counted["hmac"] += 1
        return hmac.new(key, msg, digestmod)

    def compare_digest(a: bytes, b: bytes) -> bool:
        counted["compare"] += 1
        return hmac.compare_digest(a, b)

    monkeypatch.setattr(sig, "hmac", SimpleNamespace(new=new, compare_digest=compare_digest))
    messages = 2 if surface == "oauth" else 1  # OAuth: the Python and the JavaScript libraries' messages
    for secret, accepted in ((CURRENT, True), (PREVIOUS, True), (THIRD, False)):
        signed = sign(secret)
        counted.update(hmac=0, compare=0)
        assert verify(signed, ROTATING) is accepted
        assert counted == {"hmac": 2 * messages, "compare": 2 * messages}, (secret, counted)


def test_an_empty_secret_list_or_an_empty_secret_is_a_programming_error() -> None:
    # An HMAC under an empty key is one anyone can compute.
    with pytest.raises(ValueError):
        sig.verify_webhook_hmac(WEBHOOK_BODY, sig.sign_webhook(WEBHOOK_BODY, ""), ())
    with pytest.raises(ValueError):
        sig.verify_webhook_hmac(WEBHOOK_BODY, sig.sign_webhook(WEBHOOK_BODY, ""), (CURRENT, ""))


def test_a_session_token_signed_with_the_previous_secret_still_has_its_claims_checked() -> None:
    import time

    expired = encode_session_token(SHOP, api_key=API_KEY, secret=PREVIOUS, now=int(time.time()) - 3600)
    with pytest.raises(SessionTokenError) as caught:
        decode_session_token(expired, api_key=API_KEY, secrets=ROTATING)
    assert caught.value.code == "token_expired"
    other_app = encode_session_token(SHOP, api_key="another-app", secret=PREVIOUS, now=int(time.time()))
    with pytest.raises(SessionTokenError) as caught:
        decode_session_token(other_app, api_key=API_KEY, secrets=ROTATING)
    assert caught.value.code == "wrong_audience"


# --- App proxy: a signed query must not re-split into another parameter set ------------------------------------
# What Shopify's proxy adds for a logged-out shopper (timestamp fixed: these checks do not look at freshness).
PROXY_BASE = [("shop", SHOP), ("logged_in_customer_id", ""), ("path_prefix", "/apps/lumi"), ("timestamp", "1700000000")]


def shopify_signs(pairs: list[tuple[str, str]], secret: str = CURRENT) -> list[tuple[str, str]]:
    """The query as Shopify forwards it: the shopper's parameters plus PROXY_BASE, signed."""
    full = [*pairs, *PROXY_BASE]
    return [*full, ("signature", sig.sign_proxy(full, secret))]


def with_signature_of(forged: list[tuple[str, str]], signed: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [*forged, ("signature", dict(signed)["signature"])]


def test_a_plain_logged_out_query_passes() -> None:
    assert sig.check_proxy_query(shopify_signs([]), ROTATING) is sig.ProxyCheck.VALID


# A shopper's own parameters that Shopify signs; their query, re-split, smuggles a customer id with the signature.
SMUGGLING_SENT = {
    "no '=' anywhere": [("a", "1logged_"), ("in_customer_id", "999m")],
    "'=' in a value": [("a", "1logged_in_customer_id=999m")],
}
SMUGGLED = [("a", "1"), ("logged_in_customer_id", "999"), ("mlogged_in_customer_id", ""),
            ("path_prefix", "/apps/lumi"), ("shop", SHOP), ("timestamp", "1700000000")]


@pytest.mark.parametrize("secret", [CURRENT, PREVIOUS], ids=["current", "previous"])
@pytest.mark.parametrize("sent", SMUGGLING_SENT)
def test_a_resplit_that_smuggles_a_logged_in_customer_id_is_refused(sent: str, secret: str) -> None:
    signed = shopify_signs(SMUGGLING_SENT[sent], secret)  # what a logged-out shopper gets Shopify to sign
    forged = with_signature_of(SMUGGLED, signed)
    # The construction: the same signed string, so the very same signature is a valid HMAC of the forgery…
    assert sig.proxy_message(forged) == sig.proxy_message(signed)
    assert sig.matching_secret(ROTATING, bytes.fromhex(dict(forged)["signature"]), sig.proxy_message(forged)) \
        is not None
    # …which would read as customer 999 with names free of '=', letters and '_' only: only the overlap rule stops it.
    assert dict(forged)["logged_in_customer_id"] == "999"
    assert sig.check_proxy_query(forged, ROTATING) is sig.ProxyCheck.AMBIGUOUS
    assert not sig.verify_proxy_signature(forged, ROTATING)


@pytest.mark.parametrize(
    ("sent", "forged_extra"),
    [
        ([("a", "1"), ("b", "2")], [("a", "1b=2")]),     # two parameters read as one whose value holds '='
        ([("a", "1"), ("b", "2")], [("a=1b", "2")]),     # … or as one whose name holds '='
    ],
    ids=["value-with-equals", "name-with-equals"],
)
def test_a_resplit_around_an_equals_sign_is_refused(
    sent: list[tuple[str, str]], forged_extra: list[tuple[str, str]]
) -> None:
    signed = shopify_signs(sent)
    assert sig.check_proxy_query(signed, ROTATING) is sig.ProxyCheck.VALID
    forged = with_signature_of([*forged_extra, *PROXY_BASE], signed)
    assert sig.proxy_message(forged) == sig.proxy_message(signed)
    assert sig.check_proxy_query(forged, ROTATING) is sig.ProxyCheck.AMBIGUOUS


def test_a_signed_value_holding_an_equals_sign_is_refused() -> None:
    # Shopify signs whatever the shopper sends; `a=1b=2` would also read as a=1 and b=2.
    assert sig.check_proxy_query(shopify_signs([("a", "1b=2")]), ROTATING) is sig.ProxyCheck.AMBIGUOUS


def _accepted_readings(message: str, *, overlap_rule: bool = True) -> list[dict[str, str]]:
    """Every parameter set whose signed string is `message` and that Lumi would accept: the rules of
    proxy_query_ambiguity (or all but the overlap rule), distinct names in sorted order (as the string is
    built), and the guard's checks on shop (domain), customer (ASCII digits or blank) and timestamp (ASCII digits).
    With no '=' in names or values each '=' ends one name, so a reading only chooses, between two '=', where a
    value stops and the next name (a non-empty run of [a-z_]) starts."""
    from shopify.domains import valid_shop_domain

    parts = message.split("=")
    found: list[dict[str, str]] = []

    def acceptable(pairs: list[tuple[str, str]]) -> bool:
        if overlap_rule:
            if sig.proxy_query_ambiguity(pairs) is not None:
                return False
        elif any(not re.fullmatch(r"[a-z_]+", k) or "=" in v for k, v in pairs):
            return False
        got = dict(pairs)
        customer, stamp = got.get("logged_in_customer_id", ""), got.get("timestamp", "")
        return (valid_shop_domain(got.get("shop")) is not None and (customer == "" or re.fullmatch(r"[0-9]+", customer))
                is not None and re.fullmatch(r"[0-9]+", stamp) is not None)

    def extend(pairs: list[tuple[str, str]], name: str, index: int) -> None:
        if index == len(parts) - 1:
            candidate = [*pairs, (name, parts[index])]
            if _ordered(candidate) and acceptable(candidate):
                found.append(dict(candidate))
            return
        part = parts[index]
        for cut in range(len(part)):
            nxt = part[cut:]
            if not re.fullmatch(r"[a-z_]+", nxt):
                continue
            candidate = [*pairs, (name, part[:cut])]
            if _ordered(candidate):  # prune: the pieces so far must already be in sorted order
                extend(candidate, nxt, index + 1)

    if re.fullmatch(r"[a-z_]+", parts[0]):
        extend([], parts[0], 1)
    return found


def _ordered(pairs: list[tuple[str, str]]) -> bool:
    pieces = [f"{k}={v}" for k, v in pairs]
    return len({k for k, _ in pairs}) == len(pairs) and all(a < b for a, b in zip(pieces, pieces[1:], strict=False))


@pytest.mark.parametrize(
    ("sent", "customer"),
    [
        (SMUGGLING_SENT["no '=' anywhere"], ""),
        (SMUGGLING_SENT["'=' in a value"], ""),
        ([("a", "1logged_in_customer_id=999m"), ("q", "xshop=victim.myshopify.com")], "7001"),
        ([("n", "1"), ("stamp", "9"), ("zshop", "victim.myshopify.com"), ("z_timestamp", "1")], ""),
        ([("q", "shoes"), ("mm", "1"), ("o", "9")], "12"),
        ([("qq", "shoes")], ""),
        ([("limit", "12"), ("q", "red shoes"), ("qq", "1"), ("ref", "home")], "7001"),
    ],
    ids=["resplit", "equals-in-value", "logged-in", "overlapping-names", "digits-boundary", "shifted-prefix",
         "storefront"],
)
def test_every_accepted_reading_of_a_signed_string_has_shopifys_shop_customer_and_timestamp(
    sent: list[tuple[str, str]], customer: str
) -> None:
    # The docstring's claim, checked by brute force: whatever the shopper got Shopify to sign, every way of
    # reading that signed string that Lumi accepts carries the shop, customer and timestamp Shopify added.
    base = [(k, customer if k == "logged_in_customer_id" else v) for k, v in PROXY_BASE]
    message = sig.proxy_message([*sent, *base]).decode()
    truth = {"shop": SHOP, "logged_in_customer_id": customer, "timestamp": "1700000000"}
    readings = _accepted_readings(message)
    for reading in readings:
        assert {k: reading.get(k, "") for k in truth} == truth, reading
    if not sig.proxy_query_ambiguity([*sent, *base]):
        assert dict([*sent, *base]) in readings  # the honest reading is among them


def test_where_path_prefix_ends_is_not_pinned() -> None:
    # The documented limit (Lumi decides nothing on path_prefix): `qq=…` after it also reads as path_prefix
    # "/apps/lumiq" and `q=…`, with shop, customer and timestamp unchanged.
    message = sig.proxy_message([("qq", "shoes"), *PROXY_BASE]).decode()
    assert {r.get("path_prefix") for r in _accepted_readings(message)} == {"/apps/lumi", "/apps/lumiq"}


def test_without_the_overlap_rule_a_signed_string_reads_as_another_customer() -> None:
    # Why rule 3 exists: refusing '=' and odd names alone still lets the first construction through.
    message = sig.proxy_message([*SMUGGLING_SENT["no '=' anywhere"], *PROXY_BASE]).decode()
    customers = {r.get("logged_in_customer_id") for r in _accepted_readings(message, overlap_rule=False)}
    assert "999" in customers
    assert {r.get("logged_in_customer_id") for r in _accepted_readings(message)} <= {""}


@pytest.mark.parametrize("name", ["customer_id", "id", "d", "in_customer_id", "mlogged_in_customer_id", "hop",
                                  "myshop", "stamp", "my_timestamp", "prefix", "ath_prefix", "xpath_prefix"])
def test_a_name_overlapping_one_the_proxy_adds_is_refused_even_when_signed(name: str) -> None:
    assert sig.check_proxy_query(shopify_signs([(name, "1")]), ROTATING) is sig.ProxyCheck.AMBIGUOUS


@pytest.mark.parametrize("name", ["Q", "utm2", "ids[]", "x-y", "", "café"])
def test_a_name_outside_lowercase_letters_and_underscore_is_refused_even_when_signed(name: str) -> None:
    assert sig.check_proxy_query(shopify_signs([(name, "1")]), ROTATING) is sig.ProxyCheck.AMBIGUOUS


def test_the_storefronts_own_parameters_pass() -> None:
    # What Lumi's feed block and chat send (feeds.definitions.KNOWN and the cache buster) plus campaign tags.
    sent = [("limit", "12"), ("cursor", "eyJvIjogMTJ9"), ("page", "2"), ("exclude", "1"), ("exclude", "2"),
            ("available", "true"), ("min_price", "10.00"), ("max_price", "99.50"), ("q", "red shoes, size 42"),
            ("order", "price_asc"), ("country", "FR"), ("locale", "fr-FR"), ("_", "1700000000123"),
            ("ref", "home"), ("utm_source", "newsletter")]
    assert sig.check_proxy_query(shopify_signs(sent), ROTATING) is sig.ProxyCheck.VALID
    assert sig.check_proxy_query(shopify_signs(sent, PREVIOUS), ROTATING) is sig.ProxyCheck.VALID


def test_a_tampered_value_is_a_bad_signature_not_an_ambiguity() -> None:
    signed = shopify_signs([("q", "lamp")])
    tampered = [(k, "7001" if k == "logged_in_customer_id" else v) for k, v in signed]
    assert sig.check_proxy_query(tampered, ROTATING) is sig.ProxyCheck.BAD_SIGNATURE
    forged_unsigned = [(k, v) for k, v in shopify_signs([("a", "1b=2")]) if k != "signature"]
    assert sig.check_proxy_query([*forged_unsigned, ("signature", "0" * 64)], ROTATING) is sig.ProxyCheck.BAD_SIGNATURE


def test_timestamps_must_be_ascii_digits() -> None:
    assert not sig.timestamp_is_fresh("١٧٠٠٠٠٠٠٠٠", 90, now=1_700_000_000)  # Arabic-Indic digits: int() takes them
    assert sig.timestamp_is_fresh("1700000000", 90, now=1_700_000_000)
