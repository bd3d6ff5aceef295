"""The edge's access log keeps no personal data: no client address and no query string (path only).

Shopify's app proxy adds the shopper's `logged_in_customer_id` (with `timestamp` and `signature`) to every
proxied request's query string, so a log of full request lines would hold who asked for what. DESIGN.md
promises no browsing behaviour or tracking data is kept; the README promises logs carry the path, "never the
query string". Real nginx, real requests, then the log file itself is read.
"""

from __future__ import annotations

import re

from devtools.edge import EdgeServer
from tests.edge.origin import fetch, wait_for

SHOP = "lumi-demo.myshopify.com"
CUSTOMER_ID = "7324512345678"
CLIENT_IP = "203.0.113.77"
QUERY = f"shop={SHOP}&logged_in_customer_id={CUSTOMER_ID}&timestamp=1765080000&signature=abcdef0123456789"
REQUESTS = [
    f"/proxy/feeds/new-arrivals?{QUERY}",  # cached location
    f"/proxy/chat/sessions?{QUERY}",  # proxied uncached
    f"/api/settings?{QUERY}",
]


def test_the_access_log_holds_paths_but_no_client_address_and_no_query_string(edge: EdgeServer) -> None:
    headers = {"X-Forwarded-For": CLIENT_IP, "X-Real-IP": CLIENT_IP,
               "Referer": f"https://{SHOP}/account?customer_id={CUSTOMER_ID}", "User-Agent": f"Mozilla/5.0 {CLIENT_IP}"}
    for path in REQUESTS:
        fetch(edge.port, path, headers=headers)
    log_path = edge.access_log_path
    assert log_path is not None
    wait_for(lambda: log_path.exists() and len(log_path.read_text().splitlines()) >= len(REQUESTS),
             what="one access log line per request")
    text = log_path.read_text()
    lines = text.splitlines()
    # Not vacuous: each request is there, by method and path.
    for path in REQUESTS:
        assert any(f'"GET {path.split("?")[0]} HTTP/1.1"' in line for line in lines), (path, text)
    # No query string of any kind, nor what it carried.
    for secret in (CUSTOMER_ID, "logged_in_customer_id", "signature=", "timestamp=", "shop=", "?"):
        assert secret not in text, (secret, text)
    # No client address: not the connection's (loopback here), not a forwarded one, in no IPv4/IPv6 form.
    for address in (CLIENT_IP, "127.0.0.1", "203.0.113", "::1", "::ffff:"):
        assert address not in text, (address, text)
    assert not re.search(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b", text), text
    # Nor the Referer or User-Agent (a Referer carries the storefront page's own query string).
    assert "Mozilla" not in text and "account" not in text


def test_the_rendered_config_logs_with_the_private_format(edge: EdgeServer) -> None:
    assert edge.workdir is not None
    config = (edge.workdir / "nginx.conf").read_text()
    (line,) = [ln.strip() for ln in config.splitlines() if ln.strip().startswith("access_log ") and "off" not in ln]
    assert line.endswith(" edge;"), line  # the format below, not nginx's default `combined` (address + request)
    log_format = config[config.index("log_format edge"):].split(";", 1)[0]
    for variable in ("$remote_addr", "$request ", '$request"', "$request_uri", "$args", "$query_string",
                     "$http_referer", "$http_user_agent", "$http_x_forwarded_for", "$proxy_add_x_forwarded_for"):
        assert variable not in log_format, variable
