"""`make dev`: run Lumi's whole stack locally (Redis, Meilisearch, devshop, release, web, worker, edge) until Ctrl-C."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from types import FrameType
from urllib.parse import urlencode, urljoin, urlsplit

import requests
from dotenv import dotenv_values

from devtools.edge import EdgeServer, NginxUnavailable
from devtools.services import (
    DEFAULT_MEILI_MASTER_KEY,
    REPO_ROOT,
    LinePrinter,
    ManagedProcess,
    MeiliServer,
    RedisServer,
    ServiceError,
    free_port,
    http_answers,
    http_get,
    port_in_use,
)

# DEV ONLY: a fixed Fernet key so tokens encrypted by one `make dev` can be read by the next.
# Never use it anywhere else; production sets its own LUMI_ENCRYPTION_KEYS.
DEV_ONLY_FERNET_KEY = "jicZR6e2qhcg6mpGMPziJNGBdipjTLLKrw5J_gjE_ew="

# What `make dev` uses for every variable that neither the environment nor .env sets.
# APP_URL defaults to http://localhost:$PORT; REDIS_URL, MEILI_URL and SHOPIFY_ADMIN_BASE_URL
# default to the private servers started below.
DEV_DEFAULTS: dict[str, str] = {
    "LUMI_ENV": "development",
    "PORT": "8000",
    "WEB_CONCURRENCY": "2",
    "SHOPIFY_API_KEY": "lumi-dev-client-id",
    "SHOPIFY_API_SECRET": "lumi-dev-client-secret-0123456789abcdef",
    "LUMI_ENCRYPTION_KEYS": DEV_ONLY_FERNET_KEY,
    "MEILI_MASTER_KEY": DEFAULT_MEILI_MASTER_KEY,
    "LOG_LEVEL": "INFO",
}

DEV_DATA_DIR = REPO_ROOT / ".dev"  # git-ignored; the dev Meilisearch index lives here across restarts
READY_TIMEOUT = 60.0
RELEASE_TIMEOUT = 120.0
# Stopping: the app's processes all get TERM at once, Redis and Meilisearch once those are gone, and whatever
# still runs at a deadline gets KILL, so the whole stack is gone 4 s after Ctrl-C or SIGTERM: before the
# SIGKILL that process supervisors and IDE stop buttons send 5 s after their SIGTERM.
APPS_STOP_TIMEOUT = 3.0
SERVERS_STOP_TIMEOUT = 1.0

# `.dev/env` (ENV_FILE_NAME in the data dir): the running stack's settings and URLs in dotenv format, for
# `make lumi` (devtools.lumi). Mode 0600, as it holds the stack's secrets. Written once the stack is up and
# removed when make dev stops; a make dev that was killed leaves it behind, and `make lumi` sees from
# ENV_FILE_PID (make dev's pid) that it is stale.
ENV_FILE_NAME = "env"
ENV_FILE_PID = "LUMI_DEV_PID"
# What goes in: Lumi's settings and the stack's URLs, not the rest of the shell's environment (PATH, ...).
_STACK_VARIABLE = re.compile(
    r"^(?:LUMI|SHOPIFY|MEILI|REDIS|OPENAI|SMTP|WEB|WORKER|EDGE|DEVSHOP)_[A-Z0-9_]+$|^(?:APP_URL|PORT|LOG_LEVEL)$"
)


def build_env(
    environ: Mapping[str, str] | None = None, dotenv_path: Path | None = REPO_ROOT / ".env"
) -> dict[str, str]:
    """The environment for every child: DEV_DEFAULTS < .env < the real environment."""
    env = dict(DEV_DEFAULTS)
    if dotenv_path is not None and dotenv_path.is_file():
        env.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
    env.update(os.environ if environ is None else environ)
    if not env.get("APP_URL", "").strip():
        env["APP_URL"] = f"http://localhost:{env['PORT']}"
    env["PYTHONUNBUFFERED"] = "1"  # children's lines show up as they are written
    return env


DEMO_SHOP = "lumi-demo.myshopify.com"  # the shop devshop creates and `make dev` installs the app on
INSTALL_TIMEOUT = 15.0  # seconds for each request of the install flow
INSTALL_MAX_STEPS = 12
APPROVE_FORM_ID = "devshop-approve"  # the form on devshop's install approval page
# The app embeds `make dev` switches on in the demo shop's storefront (devshop's default, like Shopify's, is none:
# a merchant turns an embed on in the theme editor). The chat embed is extensions/lumi-storefront/blocks/<handle>.
DEV_EMBEDS: list[dict[str, str]] = [{"type": "support-chat"}]


def after_ready(env: Mapping[str, str]) -> None:
    """Hook run once the whole stack is ready (/readyz answered 200), before `make dev` idles.

    `env` is the complete environment the children got, including the URLs of the servers
    started here: REDIS_URL, MEILI_URL, MEILI_MASTER_KEY, DEVSHOP_URL, SHOPIFY_ADMIN_BASE_URL,
    APP_URL and PORT. It installs the app on the demo shop through the real OAuth flow (devshop
    is fresh on every start, so this is idempotent); it raises ServiceError to abort start-up.
    Not run by `--check`.
    """
    if install_demo_shop(env):
        watch_demo_index(env)


def watch_demo_index(env: Mapping[str, str], shop: str = DEMO_SHOP, timeout: float = 300) -> bool:
    """Follow the demo shop's first catalogue sync (queued by the install) through /api/index, as the
    admin page does, printing its progress; a slow or failed sync is reported, never fatal."""
    devshop, app = env.get("DEVSHOP_URL", "").rstrip("/"), env["APP_URL"].rstrip("/")
    deadline, last = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        try:
            token = requests.post(f"{devshop}/_devshop/shops/{shop}/session-token", json={}, timeout=5).json()
            answer = requests.get(f"{app}/api/index", timeout=5,
                                  headers={"Authorization": f"Bearer {token['session_token']}"})
            state = answer.json()["index"]
        except (requests.RequestException, ValueError, KeyError) as err:
            print(f"! cannot read the index progress: {err}", flush=True)
            return False
        line = f"{state['phase'] or state['state']}: {state['done']}/{state['total'] or '?'} products"
        if line != last:
            print(f"  index {line}", flush=True)
            last = line
        if state["state"] == "completed":
            print(f"✓ indexed {state['documents']} products of {shop}", flush=True)
            return True
        if state["state"] == "failed":
            print(f"! the first sync failed: {state['error']}", flush=True)
            return False
        time.sleep(1)
        _stop_signal.check()
    print(f"! the first sync is still running after {timeout:.0f} s; `flask --app web lumi sync {shop}` "
          "shows its progress", flush=True)
    return False


def app_bridge_url(devshop_url: str) -> str:
    """devshop's App Bridge stand-in, the script Lumi's app pages load (SHOPIFY_APP_BRIDGE_URL) in `make dev`."""
    return f"{devshop_url.rstrip('/')}/_devshop/app-bridge.js"


def admin_app_url(env: Mapping[str, str], shop: str = DEMO_SHOP) -> str | None:
    """devshop's admin page for the app on `shop` (it embeds the app), when devshop is the Shopify in use."""
    devshop = env.get("DEVSHOP_URL", "").rstrip("/")
    if not devshop or not env.get("SHOPIFY_ADMIN_BASE_URL", "").startswith(devshop):
        return None
    return f"{devshop}/shops/{shop}/admin/apps/{env['SHOPIFY_API_KEY']}"


@dataclass
class _Form:
    action: str
    fields: dict[str, str] = field(default_factory=dict)


class _FormFinder(HTMLParser):
    """Finds one <form id=...> in a page: its action and its hidden fields."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id = form_id
        self.form: _Form | None = None
        self._inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form" and values.get("id") == self.form_id:
            self.form, self._inside = _Form(values.get("action", "")), True
        elif tag == "input" and self._inside and self.form is not None and values.get("type") == "hidden":
            self.form.fields[values.get("name", "")] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._inside = False


def _find(page: str, tag_id: str) -> _Form | None:
    finder = _FormFinder(tag_id)
    finder.feed(page)
    return finder.form


def _iframe_src(page: str) -> str | None:
    class Finder(HTMLParser):
        src: str | None = None

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag == "iframe" and self.src is None:
                self.src = dict(attrs).get("src")

    finder = Finder()
    finder.feed(page)
    return finder.src


def install_demo_shop(env: Mapping[str, str], shop: str = DEMO_SHOP) -> str | None:
    """Install the app on `shop` as a merchant would, over HTTP: the app's /auth/install, devshop's
    approval page (its Install button), the app's /auth/callback, and devshop's admin page for the app.
    Returns that admin page's URL; None (after a warning) when there is nothing to do yet."""
    expected = admin_app_url(env, shop)
    if expected is None:
        print(f"! not installing {shop}: SHOPIFY_ADMIN_BASE_URL is not devshop's", flush=True)
        return None
    url = f"{env['APP_URL'].rstrip('/')}/auth/install?{urlencode({'shop': shop})}"
    method, data = "GET", None
    with requests.Session() as session:
        session.trust_env = False  # every URL here is local: *_proxy variables must not apply
        for step in range(INSTALL_MAX_STEPS):
            _stop_signal.check()
            try:
                response = session.request(method, url, data=data, allow_redirects=False, timeout=INSTALL_TIMEOUT)
            except requests.RequestException as err:
                raise ServiceError(f"installing {shop}: {method} {url} failed: {err}") from err
            if step == 0 and response.status_code == 404:
                print(f"! not installing {shop}: the app answered 404 on /auth/install (no OAuth routes yet?)",
                      flush=True)
                return None
            if response.is_redirect:
                url, method, data = urljoin(url, response.headers["Location"]), "GET", None
                continue
            form = _find(response.text, APPROVE_FORM_ID) if response.status_code == 200 else None
            if form is not None:  # devshop's approval page: press Install
                url, method, data = urljoin(url, form.action), "POST", form.fields
                continue
            break
        else:
            raise ServiceError(f"installing {shop}: more than {INSTALL_MAX_STEPS} redirects, last {url}")
        final = urlsplit(url)
        if response.status_code != 200 or final.path != urlsplit(expected).path or shop not in response.text:
            raise ServiceError(f"installing {shop}: the flow ended at {method} {url} with HTTP "
                               f"{response.status_code}, not on the app's admin page {expected}: "
                               f"{_compact(response.content)}")
        _check_embedded_app(session, response.text)
    print(f"✓ installed {shop} (open {expected})", flush=True)
    return expected


def _check_embedded_app(session: requests.Session, admin_page: str) -> None:
    """Warn (only) when the app page the admin embeds does not load."""
    src = _iframe_src(admin_page)
    if not src:
        print("! devshop's admin page has no app iframe", flush=True)
        return
    try:
        response = session.get(src, allow_redirects=False, timeout=INSTALL_TIMEOUT)
    except requests.RequestException as err:
        print(f"! the embedded app page did not load: {err}", flush=True)
        return
    if response.status_code != 200:
        print(f"! the embedded app page answered {response.status_code}: {urlsplit(src).path}", flush=True)


def _is_set(env: Mapping[str, str], name: str) -> bool:
    return bool(env.get(name, "").strip())


class ChildExited(Exception):
    """A process of the stack ended while it should have kept running."""

    def __init__(self, name: str, code: int) -> None:
        super().__init__(f"{name} exited unexpectedly with code {code}")
        self.name = name
        self.code = code


class StopRequested(BaseException):
    """SIGINT or SIGTERM arrived: stop everything and leave.

    A BaseException, like KeyboardInterrupt, so no `except Exception` on its way (around a readiness
    check, in a library) swallows it.
    """


class _StopSignal:
    """SIGINT/SIGTERM in make dev's main thread: the first one raises StopRequested wherever that thread is.

    Python drops an exception raised where it cannot propagate (a weakref finalizer or __del__ that was
    running when the signal came: "Exception ignored in ..."). A stop must never be lost that way, or
    make dev would run on, deaf to the signal, until a supervisor's SIGKILL: so the loops that wait or
    idle call check(), which raises it again.
    """

    def __init__(self) -> None:
        self.received: str | None = None
        self.stopping = False  # the stop sequence runs: let it finish

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None and not self.stopping:  # later ones: already on our way out
            self.received = signal.Signals(signum).name
            raise StopRequested(self.received)

    def check(self) -> None:
        """Raise StopRequested if a signal arrived (main() catches it; the stop sequence never calls this)."""
        if self.received is not None:
            raise StopRequested(self.received)


_stop_signal = _StopSignal()


@dataclass
class Running:
    """One thing we started: how to watch it and how to stop it."""

    name: str
    poll: Callable[[], int | None]  # exit code once it has ended, else None
    terminate: Callable[[], object]  # send TERM, do not wait
    stop: Callable[[float], object]  # wait up to that many seconds, then KILL what is left; idempotent
    server: bool = False  # Redis or Meilisearch: stopped after the processes that use them


class DevStack:
    """Starts the stack in order, watches it, and stops what it started in reverse order."""

    def __init__(
        self,
        env: dict[str, str],
        printer: LinePrinter,
        *,
        venv_bin: Path | None = None,
        data_dir: Path = DEV_DATA_DIR,
    ) -> None:
        self.env = env
        self.data_dir = data_dir
        self.printer = printer
        self.bin = venv_bin or _venv_bin()
        self.running: list[Running] = []
        self.urls: dict[str, str] = {}
        self._wrote_env_file = False
        for name in ("dev", "redis", "meilisearch", "devshop", "release", "web", "worker", "edge"):
            printer.add(name)

    # -- output ------------------------------------------------------------------------------
    def say(self, text: str) -> None:
        self.printer.line("dev", text)

    # -- start -------------------------------------------------------------------------------
    def start(self) -> None:
        env = self.env
        port = int(env["PORT"])
        if port_in_use(port):
            raise ServiceError(f"port {port} is already in use (another `make dev`?): set PORT=<free port> in .env")
        edge_port = self.edge_port()
        if edge_port is not None and port_in_use(edge_port):
            raise ServiceError(f"EDGE_PORT {edge_port} is already in use: set EDGE_PORT=<free port> in .env")

        if _is_set(env, "REDIS_URL"):
            self.say(f"using REDIS_URL from the environment: {env['REDIS_URL']}")
        else:
            redis = RedisServer(printer=self.printer)
            self._track(redis)  # tracked before start: stopped even if start fails
            redis.start()
            env["REDIS_URL"] = redis.url
            self.say(f"redis ready at {redis.url} (pid {redis.pid})")

        if _is_set(env, "MEILI_URL"):
            self.say(f"using MEILI_URL from the environment: {env['MEILI_URL']}")
        else:
            meili_dir = self.data_dir / "meilisearch"
            meili = MeiliServer(workdir=meili_dir, master_key=env["MEILI_MASTER_KEY"], printer=self.printer)
            self._track(meili)
            meili.start()
            env["MEILI_URL"] = meili.url
            self.say(f"meilisearch ready at {meili.url} (pid {meili.pid}, data in {meili_dir})")

        shop_port = free_port()
        devshop_url = f"http://127.0.0.1:{shop_port}"
        devshop = ManagedProcess(
            "devshop",
            self.devshop_argv(shop_port),
            env=env,
            cwd=REPO_ROOT,
            ready=http_answers(f"{devshop_url}/_devshop/health"),  # any HTTP answer means it is up
            ready_timeout=30,
            printer=self.printer,
        )
        self._start(devshop)
        env["DEVSHOP_URL"] = devshop_url
        if not _is_set(env, "SHOPIFY_ADMIN_BASE_URL"):
            env["SHOPIFY_ADMIN_BASE_URL"] = f"{devshop_url}/shops/{{shop}}"
        if not _is_set(env, "SHOPIFY_APP_BRIDGE_URL") and env["SHOPIFY_ADMIN_BASE_URL"].startswith(devshop_url):
            # devshop's admin embeds the app: its App Bridge stand-in, not Shopify's CDN (offline, and the CDN's
            # App Bridge talks only to admin.shopify.com).
            env["SHOPIFY_APP_BRIDGE_URL"] = app_bridge_url(devshop_url)
        self.urls["devshop"] = devshop_url + "/"
        self.find_storefront_pages(devshop_url)
        self.enable_embeds(devshop_url)

        self.start_chat_stand_ins()

        release = ManagedProcess("release", self.release_argv(), env=env, cwd=REPO_ROOT, printer=self.printer)
        try:
            code = release.start().wait(RELEASE_TIMEOUT)
        finally:
            release.stop()  # a no-op once it has exited; ends it if we are interrupted
        if code != 0:
            raise ServiceError(f"the release step ({' '.join(release.argv)}) exited with code {code}")
        self.say("release step done")

        for name, argv in (("web", self.web_argv()), ("worker", self.worker_argv())):
            self._start(ManagedProcess(name, argv, env=env, cwd=REPO_ROOT, printer=self.printer))

    def find_storefront_pages(self, devshop_url: str) -> None:
        """The demo shop's storefront in devshop: its home page (two feed blocks) and a product page with the feed
        block whose product has many similar ones (devshop picks it; without an answer only the home page shows)."""
        self.urls["storefront home"] = f"{devshop_url}/shops/{DEMO_SHOP}/"
        # devshop's "log in as" page: the storefront (and the app proxy) then see a logged-in demo customer.
        self.urls["storefront login"] = f"{devshop_url}/shops/{DEMO_SHOP}/account/login"
        answer = http_get(f"{devshop_url}/_devshop/shops/{DEMO_SHOP}/storefront", timeout=10.0)
        try:
            product = json.loads(answer[1])["pages"]["product"] if answer and answer[0] == 200 else None
        except (ValueError, KeyError, TypeError):
            product = None
        if product:
            self.urls["storefront page"] = devshop_url + product
        else:
            self.say(f"! devshop named no storefront product page ({answer[0] if answer else 'no answer'})")

    def enable_embeds(self, devshop_url: str) -> bool:
        """Turn DEV_EMBEDS on in the demo shop's storefront (devshop's control API), so its pages show the chat
        launcher; an embed the extension does not have (yet) is reported, never fatal."""
        url = f"{devshop_url}/_devshop/shops/{DEMO_SHOP}/storefront"
        try:
            with requests.Session() as session:
                session.trust_env = False  # a local URL: *_proxy variables must not apply
                answer = session.put(url, json={"embeds": DEV_EMBEDS}, timeout=10.0)
        except requests.RequestException as err:
            self.say(f"! app embeds not enabled on the storefront: {err}")
            return False
        if answer.status_code != 200:
            self.say(f"! app embeds not enabled on the storefront ({answer.status_code}): {_compact(answer.content)}")
            return False
        self.say(f"storefront app embeds on: {', '.join(e['type'] for e in DEV_EMBEDS)}")
        return True

    def start_chat_stand_ins(self) -> None:
        """A local SMTP mailbox (escalation emails are printed here) unless SMTP_URL is set, and the stand-in
        model when LUMI_DEV_MODEL=1 and no OPENAI_API_KEY is set (otherwise the rule responder answers)."""
        env = self.env
        if not _is_set(env, "SMTP_URL"):
            port = free_port()
            self._start(ManagedProcess("mailbox", [self.python, "-m", "devtools.mailbox", "--port", str(port)],
                                       env=env, cwd=REPO_ROOT, ready=lambda: port_in_use(port), printer=self.printer))
            env["SMTP_URL"] = f"smtp://127.0.0.1:{port}"
            self.urls["mailbox"] = env["SMTP_URL"] + "  (escalation emails print in this terminal)"
        if env.get("LUMI_DEV_MODEL") == "1" and not _is_set(env, "OPENAI_API_KEY"):
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            self._start(ManagedProcess("devmodel", [self.python, "-m", "devmodel", "--port", str(port), "--api-key",
                                                    "sk-devmodel-local"], env=env, cwd=REPO_ROOT,
                                       ready=http_answers(f"{url}/_devmodel/health"), printer=self.printer))
            env["OPENAI_API_KEY"], env["OPENAI_BASE_URL"] = "sk-devmodel-local", f"{url}/v1"
            self.urls["model"] = f"{url}/v1 (devmodel stand-in)"

    def edge_port(self) -> int | None:
        """EDGE_PORT when set (ServiceError if it is not a port number), else None: PORT+1 or a free port."""
        value = self.env.get("EDGE_PORT", "").strip()
        if not value:
            return None
        if not value.isdigit() or not 0 < int(value) < 65536:
            raise ServiceError(f"EDGE_PORT must be a TCP port number, not {value!r}")
        return int(value)

    def start_edge(self) -> EdgeServer | None:
        """Put the storefront edge (nginx with deploy/edge/nginx.conf.template) in front of the web process.

        Run once web is up. Listens on EDGE_PORT, else PORT+1 when it can, else a free port; sets EDGE_URL.
        Without nginx (bootstrap not run) it says so and the stack runs without the edge.
        """
        env = self.env
        upstream = f"127.0.0.1:{env['PORT']}"
        wanted = self.edge_port()
        fixed = wanted is not None
        if wanted is None:
            wanted = int(env["PORT"]) + 1
            if wanted >= 65536 or port_in_use(wanted):
                wanted = None  # EdgeServer picks a free port (and retries if it is taken meanwhile)
        try:
            edge = self._start_edge(EdgeServer(upstream=upstream, port=wanted, printer=self.printer))
        except ServiceError as err:
            # PORT+1 looked free but was not (an outgoing connection can hold it): take any free port.
            if fixed or wanted is None or "Address already in use" not in str(err):
                raise
            self.say(f"port {wanted} is taken: the storefront edge takes a free port instead")
            edge = self._start_edge(EdgeServer(upstream=upstream, printer=self.printer))
        if edge is None:
            return None
        env["EDGE_URL"] = f"http://localhost:{edge.port}"
        self.urls["edge"] = env["EDGE_URL"]
        self.say(f"storefront edge ready at {edge.url} → web on {upstream} "
                 f"(nginx {edge.version_text}, master pid {edge.pid}, access log {edge.access_log_path})")
        return edge

    def _start_edge(self, edge: EdgeServer) -> EdgeServer | None:
        """Start edge, tracked so it is stopped with the rest; None (after a warning) when nginx is missing."""
        running = Running(edge.name, lambda: edge.process.poll() if edge.process is not None else None,
                          edge.terminate, edge.stop)
        self.running.append(running)
        try:
            edge.start()
        except NginxUnavailable as err:
            self.running.remove(running)
            self.say(f"! storefront edge not started: {err}")
            return None
        except ServiceError:
            self.running.remove(running)
            edge.stop()
            raise
        return edge

    # -- the commands (methods, so tests can stand in for them) -------------------------------
    def devshop_argv(self, port: int) -> list[str]:
        env = self.env
        return [
            self.python, "-m", "devshop",
            "--host", "127.0.0.1",
            "--port", str(port),
            "--app-url", env["APP_URL"],
            "--api-key", env["SHOPIFY_API_KEY"],
            "--api-secret", env["SHOPIFY_API_SECRET"],
            "--shop", DEMO_SHOP,
            # The demo shop sells in dollars (its other market, Europe, in euros: ?country=FR on its storefront).
            "--currency", "USD",
            # The merchant's approval page in a browser; after_ready presses its Install button itself.
            "--authorize-mode", "page",
            # Orders over the last 60 days with best sellers and trending products, so the sales feeds have content.
            "--orders-recent",
        ]  # fmt: skip

    def release_argv(self) -> list[str]:
        return [self.python, "-m", "feeds.release"]

    def web_argv(self) -> list[str]:
        return [*self.gunicorn, "-c", "gunicorn.conf.py", "web:create_app()"]

    def worker_argv(self) -> list[str]:
        return [self.python, "-m", "jobs.worker"]

    @property
    def python(self) -> str:
        return str(self.bin / "python") if (self.bin / "python").exists() else sys.executable

    @property
    def gunicorn(self) -> list[str]:
        exe = self.bin / "gunicorn"
        return [str(exe)] if exe.exists() else [self.python, "-m", "gunicorn"]

    def _track(self, server: RedisServer | MeiliServer) -> None:
        def poll() -> int | None:
            return server.process.poll() if server.process is not None else None

        self.running.append(Running(server.name, poll, server.terminate, server.stop, server=True))

    def _start(self, process: ManagedProcess) -> None:
        self.running.append(Running(process.name, process.poll, process.terminate, process.stop))
        process.start()
        self.say(f"{process.name} started (pid {process.pid})")

    # -- watch -------------------------------------------------------------------------------
    def check_children(self) -> None:
        """Raise ChildExited if anything we started has ended (StopRequested if a signal's was lost)."""
        _stop_signal.check()
        for item in self.running:
            code = item.poll()
            if code is not None:
                raise ChildExited(item.name, code)

    def readyz_url(self) -> str:
        return f"http://127.0.0.1:{self.env['PORT']}/readyz"

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> tuple[int, str]:
        """Wait for /readyz to answer 200, printing what it says while it does not."""
        url = self.readyz_url()
        deadline = time.monotonic() + timeout
        last = ""
        while True:
            self.check_children()
            answer = http_get(url, timeout=2.0)
            status, body = (answer[0], _compact(answer[1])) if answer else (0, "no answer yet")
            if status == 200:
                return status, body
            said = f"/readyz: {status or '-'} {body}"
            if said != last:
                self.say(said)
                last = said
            if time.monotonic() >= deadline:
                raise ServiceError(f"/readyz was not 200 within {timeout:g} s; last answer: {said}")
            time.sleep(0.5)

    def supervise(self) -> None:
        """Idle until a child exits (ChildExited) or a signal arrives (StopRequested)."""
        while True:
            self.check_children()
            time.sleep(0.25)

    # -- stop --------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop everything started, newest first, within APPS_STOP_TIMEOUT + SERVERS_STOP_TIMEOUT: TERM to all
        the app's processes at once, then to Redis and Meilisearch; KILL for what is still running at each
        deadline (its whole session, so grandchildren such as RQ's work horse go too)."""
        newest_first = list(reversed(self.running))
        for wave, timeout in (([item for item in newest_first if not item.server], APPS_STOP_TIMEOUT),
                              ([item for item in newest_first if item.server], SERVERS_STOP_TIMEOUT)):
            for item in wave:
                if item.poll() is None:
                    self.say(f"stopping {item.name}")
                try:
                    item.terminate()
                except Exception as err:  # keep stopping the others
                    self.say(f"could not stop {item.name}: {err}")
            deadline = time.monotonic() + timeout
            for item in wave:
                try:
                    item.stop(max(0.0, deadline - time.monotonic()))
                except Exception as err:
                    self.say(f"could not stop {item.name}: {err}")
        self.running.clear()
        self.remove_env_file()

    # -- .dev/env ----------------------------------------------------------------------------
    @property
    def env_file(self) -> Path:
        return self.data_dir / ENV_FILE_NAME

    def write_env_file(self) -> Path:
        """Write the stack's settings and URLs to env_file (dotenv, mode 0600, replaced atomically)."""
        values = {name: value for name, value in sorted(self.env.items()) if _STACK_VARIABLE.match(name)}
        lines = [
            f"# Written by `make dev` (pid {os.getpid()}): the environment of the stack it runs, for `make lumi`.",
            "# Removed when make dev stops. If make dev was killed, it is stale: LUMI_DEV_PID is not running.",
            f"{ENV_FILE_PID}={_dotenv_quote(str(os.getpid()))}",
            *(f"{name}={_dotenv_quote(value)}" for name, value in values.items()),
        ]
        self.data_dir.mkdir(parents=True, exist_ok=True)
        partial = self.env_file.with_name(f".{ENV_FILE_NAME}.{os.getpid()}.partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            os.fchmod(out.fileno(), 0o600)  # also when a leftover file had other bits
            out.write("\n".join(lines) + "\n")
        os.replace(partial, self.env_file)
        self._wrote_env_file = True
        return self.env_file

    def remove_env_file(self) -> None:
        """Remove env_file if this process wrote it and no other make dev has replaced it since."""
        if not self._wrote_env_file:
            return
        self._wrote_env_file = False
        try:
            if dotenv_values(self.env_file).get(ENV_FILE_PID) == str(os.getpid()):
                self.env_file.unlink()
        except OSError:
            pass

    def banner(self) -> str:
        local = f"http://localhost:{self.env['PORT']}"
        rows = [
            ("app", f"{local}/healthz"),
            ("readiness", f"{local}/readyz"),
        ]
        if self.env["APP_URL"].rstrip("/") != local:
            rows.append(("APP_URL", self.env["APP_URL"]))
        if "edge" in self.urls:
            rows.append(("storefront edge", f"{self.urls['edge']}/proxy/feeds/new-arrivals?shop={DEMO_SHOP}"))
        admin = admin_app_url(self.env)
        rows += [
            ("devshop", self.urls.get("devshop", "-")),
            *([("storefront page", self.urls["storefront page"])] if "storefront page" in self.urls else []),
            *([("storefront home", self.urls["storefront home"])] if "storefront home" in self.urls else []),
            *([("log in as", self.urls["storefront login"])] if "storefront login" in self.urls else []),
            ("chat", f"{self.urls.get('model', 'rule responder (LUMI_DEV_MODEL=1: stand-in model)')}"),
            *([("mailbox", self.urls["mailbox"])] if "mailbox" in self.urls else []),
            *([("shop admin", admin)] if admin else []),
            ("meilisearch", f"{self.env['MEILI_URL']}  (key: MEILI_MASTER_KEY)"),
            ("redis", self.env["REDIS_URL"]),
        ]
        label = max(12, *(len(k) for k, _ in rows))
        # One URL per line, `label  URL`: at least two spaces after the longest label, so scripts can split them.
        lines = ["Lumi is running"] + [f"  {k:<{label}}  {v}" for k, v in rows] + ["Ctrl-C stops everything."]
        width = max(len(line) for line in lines)
        top, bottom = "┌" + "─" * (width + 2) + "┐", "└" + "─" * (width + 2) + "┘"
        return "\n".join([top, *(f"│ {line.ljust(width)} │" for line in lines), bottom])


def shown_path(path: Path) -> str:
    """path relative to the repository when it is inside it (.dev/env), else as it is."""
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def _venv_bin() -> Path:
    venv = REPO_ROOT / ".venv" / "bin"
    return venv if venv.is_dir() else Path(sys.executable).parent


def _dotenv_quote(value: str) -> str:
    """A dotenv value in single quotes: python-dotenv reads it back verbatim (only \\ and \\' are escapes)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _compact(body: bytes, limit: int = 300) -> str:
    text = body.decode("utf-8", errors="replace").strip()
    try:
        text = json.dumps(json.loads(text), separators=(",", ":"))
    except ValueError:
        pass
    return text if len(text) <= limit else text[: limit - 1] + "…"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.dev", description=__doc__)
    parser.add_argument(
        "--check",
        action="store_true",
        help="start everything, wait for /readyz 200, print it, stop everything and exit 0",
    )
    parser.add_argument("--ready-timeout", type=float, default=READY_TIMEOUT, help="seconds to wait for /readyz")
    parser.add_argument("--env-file", type=Path, default=REPO_ROOT / ".env", help="dotenv file to read (default: .env)")
    parser.add_argument(
        "--data-dir", type=Path, default=DEV_DATA_DIR, help="where the dev Meilisearch keeps its data (default: .dev)"
    )
    args = parser.parse_args(argv)

    printer = LinePrinter()
    stack = DevStack(build_env(dotenv_path=args.env_file), printer, data_dir=args.data_dir)
    previous = {sig: signal.signal(sig, _stop_signal.handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _run(stack, check=args.check, ready_timeout=args.ready_timeout)
    except StopRequested as why:
        stack.say(f"{why}: stopping")
        return 0
    finally:
        _stop_signal.stopping = True
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run(stack: DevStack, *, check: bool, ready_timeout: float) -> int:
    """Start, wait for readiness, then idle (or, with check, return at once). Stopping is the caller's job."""
    try:
        stack.start()
        status, body = stack.wait_ready(ready_timeout)
        stack.start_edge()
        if check:
            print(f"/readyz: {status} {body}", flush=True)
            return 0
        stack.write_env_file()
        print(stack.banner(), flush=True)
        stack.say(f"operator commands: make lumi ARGS=\"inventory {DEMO_SHOP}\" (uses {shown_path(stack.env_file)})")
        after_ready(stack.env)
        stack.supervise()
    except ChildExited as err:
        stack.say(f"{err}: stopping everything")
    except ServiceError as err:
        # The children's output is already on screen: skip the copy of it the error carries.
        for line in str(err).split("\nlast output:")[0].splitlines():
            stack.say(line)
    return 1


if __name__ == "__main__":
    sys.exit(main())
