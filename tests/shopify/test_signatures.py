"""Signature checks: exact message construction, tampering rejected, rotation, constant-time comparisons."""

from __future__ import annotations

import base64
import hashlib
import hmac
import inspect

import pytest

from shopify import signatures as sig

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


def test_every_comparison_is_constant_time() -> None:
    source = inspect.getsource(sig)
    assert source.count("hmac.compare_digest(") >= 2
    assert " == given" not in source and "== signature" not in source


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
