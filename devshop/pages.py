"""The few HTML pages devshop shows a person: a bare Shopify-admin frame around a title bar and a body."""

from __future__ import annotations

import html

from flask import Response

STYLE = """
*{box-sizing:border-box}
html,body{margin:0;height:100%;font:14px/1.4 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,sans-serif;
  background:#f1f1f1;color:#303030}
.topbar{display:flex;align-items:center;gap:12px;height:56px;padding:0 16px;background:#1a1a1a;color:#e3e3e3}
.topbar .logo{font-weight:700;color:#fff}
.topbar .shop{margin-left:auto;display:flex;align-items:center;gap:8px}
.topbar .avatar{display:inline-flex;align-items:center;justify-content:center;width:28px;height:28px;
  border-radius:8px;background:#36fba1;color:#1a1a1a;font-weight:700}
.topbar small{color:#a8a8a8}
main{padding:24px;max-width:640px;margin:0 auto}
.frame{display:flex;flex-direction:column;height:100%}
.titlebar{display:flex;align-items:center;gap:8px;height:48px;padding:0 16px;background:#fff;
  border-bottom:1px solid #e3e3e3;font-weight:650}
.titlebar small{font-weight:400;color:#616161}
iframe{flex:1;width:100%;border:0;background:#fff}
.card{background:#fff;border-radius:12px;padding:20px;box-shadow:0 1px 0 rgba(0,0,0,.07)}
.card h1{font-size:20px;margin:0 0 12px}
.card ul{padding-left:20px}
button{background:#303030;color:#fff;border:0;border-radius:8px;padding:8px 16px;font:inherit;font-weight:600;
  cursor:pointer}
.muted{color:#616161}
"""


def admin_page(shop_domain: str, shop_name: str, title: str, body_html: str, status: int = 200,
               head_html: str = "") -> Response:
    """A full admin page: the dark top bar naming the shop, then `body_html` (already escaped); `head_html` (trusted)
    goes at the end of <head>."""
    initial = html.escape((shop_name[:1] or "?").upper())
    page = (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)} · {html.escape(shop_name)} · Shopify (devshop)</title>"
        f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><style>{STYLE}</style>"
        f"{head_html}</head>"
        "<body><div class=\"frame\"><header class=\"topbar\"><span class=\"logo\">shopify</span>"
        "<small>devshop</small>"
        f"<span class=\"shop\"><span class=\"avatar\">{initial}</span><span>{html.escape(shop_name)}"
        f"</span><small>{html.escape(shop_domain)}</small></span></header>{body_html}</div></body></html>"
    )
    return Response(page, status=status, mimetype="text/html")


def message_page(shop_domain: str, shop_name: str, title: str, message: str, status: int) -> Response:
    body = (f"<main><div class=\"card\"><h1>{html.escape(title)}</h1>"
            f"<p class=\"muted\">{html.escape(message)}</p></div></main>")
    return admin_page(shop_domain, shop_name, title, body, status)


def plain_error(title: str, message: str, status: int) -> Response:
    """An error page for a shop that does not exist (no admin frame to draw)."""
    page = (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title></head>"
            f"<body><h1>{html.escape(title)}</h1><p>{html.escape(message)}</p></body></html>")
    return Response(page, status=status, mimetype="text/html")
