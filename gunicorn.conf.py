"""gunicorn settings for the `web` process (Heroku-style: one dyno, `$PORT`, router timeout 30 s)."""

from typing import Any

# Only the standard library, cryptography's Fernet and core.plans come with core.settings: the master imports
# nothing that holds ssl, socket or thread state, so the gevent workers' patching (below) finds nothing it
# cannot reach (gevent warns "Monkey-patching ssl after ssl has already been imported" otherwise).
from core.settings import load_settings_or_exit

# Validate configuration before forking: a missing or bad variable stops the master with a
# message naming it, instead of every worker crash-looping with a traceback.
_settings = load_settings_or_exit()

# "[::]" listens on IPv4 and IPv6, which Heroku's router may use.
bind = [f"[::]:{_settings.port}"]

# gevent workers: each connection is a greenlet, and every wait on a socket (the shopper's, Redis,
# Meilisearch, Shopify, the model provider) lets the others run. A chat turn waits seconds on the model;
# with a thread per request (gthread) a dyno held only processes × threads turns at once, and a slow
# model stalled the feeds waiting for those threads. The worker calls gevent.monkey.patch_all() as it
# starts, before it imports the app (no preload_app), so redis-py, requests, http.client, httpx under
# the openai SDK, smtplib, threading (the chat turn's thread, locks, queue.Queue) and time.sleep all
# cooperate.
workers = _settings.web_concurrency
worker_class = "gevent"
# Open connections per worker: streaming turns, feeds and idle keep-alive connections. A full worker
# stops accepting and the others take the next ones, so a dyno holds workers × this many.
worker_connections = _settings.web_worker_connections

# A worker tells the master it is alive once a second from its own greenlet: `timeout` only ends a
# worker stuck in CPU for that long (never one request; streamed chat turns may last longer). The
# router's 30 s limit is on the first byte, which a stream sends at once (then comments every few
# seconds). On SIGTERM or recycling, open streams get graceful_timeout to finish, within Heroku's 30 s.
timeout = 25
graceful_timeout = 20
keepalive = 5

# Recycle workers now and then so a slow leak never takes a dyno down.
max_requests = 5000
max_requests_jitter = 500

# The app logs one structured JSON line per request itself; gunicorn's access log would
# add a second, unstructured line with full query strings (signatures), so it stays off.
accesslog = None
errorlog = "-"
loglevel = _settings.log_level.lower()

# Heroku's router is the only thing in front of us; trust its X-Forwarded-* headers.
forwarded_allow_ips = "*"

# gunicorn 24+ opens a control socket in $HOME by default; several local instances (tests,
# `make dev`) would share it, and a dyno has no use for it.
control_socket_disable = True


def post_worker_init(worker: Any) -> None:
    """Build the model client before serving: importing the openai SDK takes around a second of CPU, which
    inside the first chat turn would hold up every other request of this worker (greenlets share one thread)."""
    from web.extensions import get_services

    with worker.wsgi.app_context():
        get_services().model  # noqa: B018 - built on first access
