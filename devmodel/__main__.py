"""Run devmodel: python -m devmodel --port 9200 [--api-key K] [--delay S] [--token-delay S] [--quiet]."""

from __future__ import annotations

import argparse
import logging
import threading

from devmodel.server import DEFAULT_API_KEY, create_app, make_server
from devtools.shutdown import hold_stop_signals, wait_for_stop_signal


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from err
    if value < 0:
        raise argparse.ArgumentTypeError("seconds must be >= 0")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devmodel", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9200, help="0 picks a free port (named in the start-up line)")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY, help="the bearer key clients must send")
    parser.add_argument("--any-key", action="store_true", help="accept any non-empty key")
    parser.add_argument("--delay", type=_seconds, default=0.0, metavar="S",
                        help="seconds before the first byte of every answer (fixed latency for benchmarks)")
    parser.add_argument("--token-delay", type=_seconds, default=0.0, metavar="S",
                        help="seconds before each streamed token")
    parser.add_argument("--quiet", action="store_true", help="no access log lines")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    hold_stop_signals()  # before create_app or the server start threads: they inherit the mask
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    log = logging.getLogger("devmodel")
    app = create_app({"API_KEY": None if args.any_key else args.api_key, "DELAY_S": args.delay,
                      "TOKEN_DELAY_S": args.token_delay})
    server = make_server(app, args.host, args.port, quiet=args.quiet)
    # serve_forever runs in a thread so the main thread can call shutdown() when signalled.
    thread = threading.Thread(target=server.serve_forever, name="devmodel-server", daemon=True)
    thread.start()
    url = f"http://{args.host}:{server.server_port}"
    log.info("devmodel serving %s (base_url %s/v1, delay %gs, token delay %gs)", url, url, args.delay,
             args.token_delay)
    wait_for_stop_signal()
    app.extensions["devmodel"].close()  # wake pending delays and hangs so shutdown does not wait for them
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)
    log.info("devmodel stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
