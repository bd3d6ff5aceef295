"""Run devshop: python -m devshop --host 127.0.0.1 --port 9100 [--app-url URL] [--authorize-mode page] ..."""

from __future__ import annotations

import argparse
import logging
import threading

from werkzeug.serving import make_server

from devshop import create_app
from devtools.shutdown import hold_stop_signals, wait_for_stop_signal


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devshop", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--app-url", help="where the Lumi app listens (webhooks, OAuth redirects)")
    parser.add_argument("--app-toml", help="shopify.app.toml to route webhooks by (default: the repo's)")
    parser.add_argument("--api-key", default="lumi-dev-client-id")
    parser.add_argument("--api-secret", default="lumi-dev-client-secret-0123456789abcdef")
    parser.add_argument("--shop", default="lumi-demo.myshopify.com")
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--orders", type=int, default=300)
    parser.add_argument("--orders-recent", action="store_true",
                        help="date orders over the 60 days before start-up, with best sellers and trending products "
                             "(default: a fixed past span, products picked uniformly)")
    parser.add_argument("--currency", default="EUR", type=str.upper,
                        help="the shop's base currency (its primary market's); a second market has another one")
    parser.add_argument("--plan", default="standard", choices=("standard", "advanced", "plus", "enterprise"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--token-ttl", type=int, default=3600)
    parser.add_argument("--session-token-ttl", type=int, default=60, metavar="S",
                        help="seconds a session token from the admin (launch id_token, shopify.idToken()) lives "
                             "(Shopify: 60)")
    parser.add_argument("--authorize-mode", choices=("auto", "page"), default="auto",
                        help="auto: approve installs at once (tests); page: show the approval page (make dev)")
    parser.add_argument("--webhook-timeout", type=float, default=5.0, help="seconds the app has to answer a webhook")
    parser.add_argument("--webhook-retry-schedule", type=_schedule, default=None, metavar="S,S,...",
                        help="seconds before each retry of a failed webhook (default: 8 retries over 4 hours)")
    parser.add_argument("--bulk-delay", type=float, default=0.0, metavar="S",
                        help="seconds a bulk export sleeps per 1,000 objects (to watch it RUNNING)")
    parser.add_argument("--bulk-dir", help="where bulk result files go (default: a temporary directory)")
    parser.add_argument("--proxy-buffer", action="store_true",
                        help="the app proxy reads the app's whole answer before sending it (default: streams it "
                             "through as it arrives); POST /_devshop/proxy {\"buffer\": ...} switches it later")
    return parser.parse_args(argv)


def _schedule(text: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of seconds: {text!r}") from err
    if any(v < 0 for v in values):
        raise argparse.ArgumentTypeError("retry delays must be >= 0")
    return values


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    hold_stop_signals()  # before create_app or the server start threads: they inherit the mask
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app = create_app({
        "API_KEY": args.api_key, "API_SECRET": args.api_secret, "APP_URL": args.app_url,
        "APP_TOML": args.app_toml, "TOKEN_TTL": args.token_ttl,
        "SESSION_TOKEN_TTL": args.session_token_ttl, "AUTHORIZE_MODE": args.authorize_mode,
        "WEBHOOK_TIMEOUT": args.webhook_timeout, "WEBHOOK_RETRY_SCHEDULE": args.webhook_retry_schedule,
        "BULK_DELAY": args.bulk_delay, "BULK_DIR": args.bulk_dir, "APP_PROXY_BUFFER": args.proxy_buffer,
        "SHOPS": {args.shop: {"products": args.products, "orders": args.orders, "seed": args.seed,
                              "plan": args.plan, "orders_recent": args.orders_recent,
                              "currency": args.currency}},
    })
    server = make_server(args.host, args.port, app, threaded=True)
    # serve_forever runs in a thread so the main thread can call shutdown() when signalled.
    thread = threading.Thread(target=server.serve_forever, name="devshop-server", daemon=True)
    thread.start()
    base = f"http://{args.host}:{server.server_port}"
    logging.getLogger("devshop").info("devshop serving %s (admin base %s/shops/{shop}, shop %s)", base, base, args.shop)
    wait_for_stop_signal()
    app.extensions["devshop"].close()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
    logging.getLogger("devshop").info("devshop stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
