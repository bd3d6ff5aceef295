"""Property: personal data a shopper types never reaches Redis or the model provider, whatever its shape.

Real Redis, the real openai SDK against the devmodel stand-in server, the real engine and store.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat.engine import ChatEngine, TurnContext
from chat.llm import ModelClient
from chat.orders import OrderLookup
from chat.store import ChatStore
from devmodel.testing import DevModelServer
from tests.chat.test_redaction import addresses, cards, digits_only, emails, ibans, phones

SHOP = "pii-shop.myshopify.com"


@pytest.fixture(scope="module")
def model_server() -> Iterator[DevModelServer]:
    with DevModelServer() as server:
        yield server


def _no_shopify() -> OrderLookup:
    def refuse():  # type: ignore[no-untyped-def]
        raise AssertionError("no order lookup expected for an unverified, anonymous shopper")

    return OrderLookup(refuse)


def _dump(client: redis.Redis) -> str:
    parts = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        if kind == "hash":
            parts.append(repr(client.hgetall(key)))
        elif kind == "list":
            parts.append(repr(client.lrange(key, 0, -1)))
        elif kind == "string":
            parts.append(repr(client.get(key)))
        elif kind == "zset":
            parts.append(repr(client.zrange(key, 0, -1, withscores=True)))
        parts.append(key)
    return "\n".join(parts)


def _squeeze(text: str) -> str:
    """Without the separators numbers are written with, so a number stored in any spacing is found."""
    return re.sub(r"[\s.\-()/+]", "", text)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pii=st.lists(st.one_of(emails(), phones(), cards(), ibans(), addresses()), min_size=1, max_size=4),
       use_model=st.booleans())
def test_no_pii_survives_into_redis_or_the_model_request(pii: list[str], use_model: bool, redis_client: redis.Redis,
                                                         model_server: DevModelServer) -> None:
    redis_client.flushdb()
    model_server.control.reset()
    store = ChatStore(redis_client)
    model = ModelClient(model_server.api_key, model_server.base_url, "devmodel", timeout=5, max_retries=0)
    try:
        session, _ = store.create(SHOP, 3600, "en")
        model_server.control.script_text("Thanks, I can help once you verify your order in the form.")
        ctx = TurnContext(shop=SHOP, session=session, settings={"language": "en"}, shop_name="PII Shop",
                          contact_email=None, customer_id=None, lookup=_no_shopify(), search=lambda q: [])
        text = "Hello, here are my details: " + " ; ".join(pii) + " - can you help?"
        ChatEngine(store, model if use_model else None).turn(ctx, text)
    finally:
        model.close()
    stored = _dump(redis_client)
    sent = repr(model_server.control.bodies())
    for value in pii:
        assert value not in stored
        assert value not in sent
        number = digits_only(value)
        if len(number) >= 9:  # phone, card and IBAN digit runs, whatever the separators were
            assert number not in _squeeze(stored)
            assert number not in _squeeze(sent)
