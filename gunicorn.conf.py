"""gunicorn settings for the `web` process (Heroku-style: one dyno, `$PORT`, router timeout 30 s)."""

from core.settings import load_settings_or_exit

# Validate configuration before forking: a missing or bad variable stops the master with a
# message naming it, instead of every worker crash-looping with a traceback.
_settings = load_settings_or_exit()

# "[::]" listens on IPv4 and IPv6, which Heroku's router may use.
bind = [f"[::]:{_settings.port}"]

# Processes × threads: our requests mostly wait on Redis, Meilisearch, Shopify or the model
# provider, so a threaded worker (gthread) serves many of them per process cheaply.
workers = _settings.web_concurrency
worker_class = "gthread"
threads = _settings.web_threads

# Below the router's 30 s limit so gunicorn, not the router, ends a stuck request, and
# shut down gracefully within Heroku's 30 s SIGTERM window.
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
