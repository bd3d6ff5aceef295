"""Storefront benchmark: Lighthouse's performance score of devshop's product page with each of Lumi's app blocks
and without it, measured side by side in this run, plus the bytes each puts on the wire.

One private stack, as `make dev` runs it: Redis, Meilisearch, devshop (a USD shop with recent orders, serving
the storefront pages, the app proxy and the extension's assets as Shopify's CDN would), Lumi's web process
under gunicorn (gunicorn.conf.py) and a real worker, the app installed through OAuth and the catalogue synced.
Then Lighthouse 12.2.3 (node_modules/.bin/lighthouse, the system Chromium, performance category only,
Lighthouse's default mobile emulation and simulated throttling) loads the same product page N times with the app
block and N times without any (the same URL with devshop's `?lumi=off`, which renders the page without app blocks
or embeds), interleaved with / without so both see the same machine, for two scenarios in turn:
- the feed block (a similar-products product-feed block; goal: at most 3 points lost; Built for Shopify's rule
  is 10), with its JavaScript, stylesheet and feed JSON measured raw, as served and gzipped;
- the chat app embed (support-chat, target body; goal: at most 2 points lost), with the bytes Lumi's embed loads
  before the shopper touches it and those loaded when the panel opens (Playwright in the same Chromium).
Printed: the median score of each variant, their difference, the medians of Lighthouse's metrics and how long
one Lighthouse run takes.

Offline by construction: Chromium resolves no host name but 127.0.0.1 (a request elsewhere fails at once
instead of waiting on DNS) and its background networking is off. So the product images, on cdn.shopify.com as in
the catalogue, fail at once in both variants: the scores leave image bytes out (the product's own image and the
block's lazy card images alike). devshop serves the page and the extension's assets uncompressed (Shopify's CDN
compresses them), so Lighthouse's transfer sizes for those are the raw bytes: a pessimistic measure.
Run: `python -m bench.storefront [--quick] [--runs N] [--only feed|chat] [--preset desktop] [--keep-reports]`.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import html
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import meilisearch
import requests
from cryptography.fernet import Fernet

from bench.sync import GOAL_HEADER, child_env, met, say, table
from devtools.services import REPO_ROOT, ManagedProcess, MeiliServer, RedisServer, free_port, http_ok

SHOP = "lumi-demo.myshopify.com"
SHOP_SPEC = {"products": 300, "seed": 1, "currency": "USD", "orders": 400, "orders_recent": True}
API_KEY = "lumi-bench-client-id"
API_SECRET = "lumi-bench-client-secret-0123456789abcdef"
BLOCK = {"type": "product-feed", "settings": {"feed": "similar", "heading": "You may also like", "limit": 8,
                                              "layout": "grid", "columns_desktop": 4, "columns_mobile": 2,
                                              "image_ratio": "square", "show_vendor": False,
                                              "show_compare_at": True, "show_badges": True}}
LIGHTHOUSE = REPO_ROOT / "node_modules" / ".bin" / "lighthouse"
CHROMIUM = Path("/usr/bin/chromium")
CHROME_FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-default-apps", "--disable-extensions", "--mute-audio",
    "--disable-domain-reliability", "--disable-client-side-phishing-detection", "--no-default-browser-check",
    "--metrics-recording-only", "--disable-features=OptimizationHints,MediaRouter,Translate",
    # Offline: every host name but the loopback address fails to resolve, immediately.
    '--host-resolver-rules="MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"',
]
LIGHTHOUSE_TIMEOUT = 240.0  # seconds for one run before the bench gives up on it
METRICS = [("first-contentful-paint", "FCP", "ms"), ("largest-contentful-paint", "LCP", "ms"),
           ("total-blocking-time", "TBT", "ms"), ("cumulative-layout-shift", "CLS", ""),
           ("speed-index", "Speed Index", "ms")]
BLOCK_PATHS = ("/cdn/extensions/lumi-storefront/", "/apps/lumi/")  # the extension's assets, its feeds and config

# Goals from the issues: the feed block costs at most 3 performance points, the chat embed 2 (medians of the runs).
GOAL_POINTS = 3.0
EMBED_GOAL_POINTS = 2.0


@dataclass
class Run:
    variant: str  # "with" | "without"
    score: float  # 0-100
    seconds: float  # wall time of the lighthouse process
    metrics: dict[str, float]
    requests: list[dict[str, Any]] = field(default_factory=list)  # network-requests items
    warnings: list[str] = field(default_factory=list)
    runtime_error: str | None = None


# --- the stack ------------------------------------------------------------------------------------------------


class StorefrontStack:
    """Redis, Meilisearch, devshop (thread), Lumi's gunicorn and worker (processes); the demo shop installed."""

    def __init__(self, exit_stack: ExitStack, workdir: Path) -> None:
        from devshop.testing import DevShopServer
        from feeds.index import ensure_indexes

        self.workdir = workdir
        redis_server = exit_stack.enter_context(RedisServer().start())
        meili = exit_stack.enter_context(MeiliServer().start())
        ensure_indexes(meilisearch.Client(meili.url, meili.master_key))
        web_port = free_port()
        self.app_url = f"http://127.0.0.1:{web_port}"
        self.devshop = DevShopServer({"API_KEY": API_KEY, "API_SECRET": API_SECRET, "APP_URL": self.app_url,
                                      "SHOPS": {SHOP: SHOP_SPEC}}).start()
        exit_stack.callback(self.devshop.stop)
        self.origin = self.devshop.url
        self.env = {
            "LUMI_ENV": "development",
            "SHOPIFY_API_KEY": API_KEY,
            "SHOPIFY_API_SECRET": API_SECRET,
            "APP_URL": self.app_url,
            "PORT": str(web_port),
            "SHOPIFY_ADMIN_BASE_URL": self.devshop.admin_base_url,
            "DEVSHOP_URL": self.devshop.url,
            "REDIS_URL": redis_server.url,
            "MEILI_URL": meili.url,
            "MEILI_MASTER_KEY": meili.master_key,
            "LUMI_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "LOG_LEVEL": "WARNING",
            "WEB_CONCURRENCY": "2",
        }
        gunicorn = REPO_ROOT / ".venv" / "bin" / "gunicorn"
        argv = [str(gunicorn)] if gunicorn.exists() else [sys.executable, "-m", "gunicorn"]
        self.web = ManagedProcess("web", [*argv, "-c", "gunicorn.conf.py", "web:create_app()"],
                                  env=child_env(self.env), cwd=REPO_ROOT, ready=http_ok(f"{self.app_url}/healthz"),
                                  ready_timeout=60, log_path=workdir / "web.log", stop_timeout=25)
        self.web.start()
        exit_stack.callback(self.web.stop)
        self.worker = ManagedProcess("worker", [sys.executable, "-m", "jobs.worker"], env=child_env(self.env),
                                     cwd=REPO_ROOT, log_path=workdir / "worker.log", stop_timeout=20)
        self.worker.start()
        exit_stack.callback(self.worker.stop)

    def install_and_sync(self) -> None:
        """The merchant installs Lumi through OAuth (which queues the first sync); wait until it is indexed."""
        from devtools.dev import install_demo_shop, watch_demo_index

        progress = io.StringIO()  # make dev's line-by-line progress, kept for an error message
        started = time.monotonic()
        with contextlib.redirect_stdout(progress):
            installed = install_demo_shop(self.env, SHOP) is not None
            indexed = installed and watch_demo_index(self.env, SHOP, timeout=300)
        if not indexed:
            raise RuntimeError(f"installing {SHOP} and its first sync failed:\n{progress.getvalue()[-3000:]}\n"
                               f"worker log:\n{self.worker.tail()}")
        say(f"  installed Lumi on {SHOP} through OAuth and synced its catalogue in {time.monotonic() - started:.0f} s "
            f"({progress.getvalue().strip().splitlines()[-1].lstrip('✓ ')})")

    # storefront ---------------------------------------------------------------------------------------------

    def place_blocks(self, page: str, blocks: list[dict[str, Any]]) -> None:
        response = requests.put(f"{self.origin}/_devshop/shops/{SHOP}/storefront",
                                json={page: blocks}, timeout=30)
        if response.status_code != 200:
            raise RuntimeError(f"PUT storefront: {response.status_code} {response.text[:500]}")

    def product_page(self) -> str:
        """devshop's demo product page (what `make dev` prints as the storefront page): a listed, available product
        with an image and enough similar products."""
        response = requests.get(f"{self.origin}/_devshop/shops/{SHOP}/storefront", timeout=30)
        response.raise_for_status()
        path = response.json()["pages"]["product"]
        if not path:
            raise RuntimeError(f"devshop has no product page for {SHOP}")
        return f"{self.origin}{path}"


# --- Lighthouse -----------------------------------------------------------------------------------------------


def lighthouse(url: str, report: Path, preset: str | None) -> tuple[dict[str, Any], float]:
    argv = [str(LIGHTHOUSE), url, "--only-categories=performance", "--output=json", f"--output-path={report}",
            "--quiet", f"--chrome-flags={' '.join(CHROME_FLAGS)}", "--max-wait-for-load=30000",
            "--disable-full-page-screenshot"]
    if preset:
        argv.append(f"--preset={preset}")
    env = {**os.environ, "CHROME_PATH": str(CHROMIUM)}
    started = time.monotonic()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=LIGHTHOUSE_TIMEOUT, check=False)
    took = time.monotonic() - started
    if done.returncode != 0 or not report.exists():
        raise RuntimeError(f"lighthouse exited {done.returncode} after {took:.0f} s:\n{done.stdout[-2000:]}\n"
                           f"{done.stderr[-3000:]}")
    return json.loads(report.read_text()), took


def parse(variant: str, result: dict[str, Any], seconds: float) -> Run:
    audits = result["audits"]
    score = result["categories"]["performance"]["score"]
    items = (audits.get("network-requests", {}).get("details") or {}).get("items", [])
    return Run(variant=variant, score=100 * score if score is not None else float("nan"), seconds=seconds,
               metrics={key: float(audits[key]["numericValue"]) for key, _, _ in METRICS
                        if audits.get(key, {}).get("numericValue") is not None},
               requests=items, warnings=list(result.get("runWarnings") or []),
               runtime_error=(result.get("runtimeError") or {}).get("message"))


def block_requests(run: Run) -> list[dict[str, Any]]:
    return [r for r in run.requests if any(p in urlsplit(r["url"]).path for p in BLOCK_PATHS)]


# --- bytes --------------------------------------------------------------------------------------------------


@dataclass
class Weight:
    url: str
    raw: int  # the body, uncompressed
    served: int  # the body as served to a browser sending Accept-Encoding: gzip, deflate, br
    encoding: str  # Content-Encoding of that answer ("" when none)
    gzipped: int  # the raw body gzipped (level 9), what a compressing CDN would send at most


def measure(url: str) -> Weight:
    raw = requests.get(url, headers={"Accept-Encoding": "identity"}, timeout=30)
    raw.raise_for_status()
    served = requests.get(url, headers={"Accept-Encoding": "gzip, deflate, br"}, timeout=30, stream=True)
    served.raise_for_status()
    wire = served.raw.read(decode_content=False)
    encoding = served.headers.get("Content-Encoding", "")
    served.close()
    return Weight(url, len(raw.content), len(wire), encoding, len(gzip.compress(raw.content, 9)))


def kib(n: float) -> str:
    return f"{n / 1024:.1f} KiB ({int(n):,} B)"


# --- entry point ------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.storefront", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one run with and one without each app block")
    parser.add_argument("--runs", type=int, help="Lighthouse runs per variant (default 3; --quick: 1)")
    parser.add_argument("--preset", choices=("desktop", "perf"), help="Lighthouse preset (default: mobile)")
    parser.add_argument("--only", choices=[s.key for s in SCENARIOS], help="measure one app block only")
    parser.add_argument("--keep-reports", action="store_true", help="keep the Lighthouse JSON reports and logs")
    args = parser.parse_args(argv)
    runs = args.runs or (1 if args.quick else 3)
    scenarios = [s for s in SCENARIOS if args.only in (None, s.key)]
    missing = [str(p) for p in (LIGHTHOUSE, CHROMIUM) if not p.exists()]
    if missing:
        say(f"bench.storefront: {', '.join(missing)} missing (`make bootstrap` installs Chromium and the npm tools)")
        return 2
    version = subprocess.run([str(LIGHTHOUSE), "--version"], capture_output=True, text=True, check=False,
                             timeout=60).stdout.strip()
    say(f"bench.storefront: Lighthouse {version}, {CHROMIUM} ({_chromium_version()}), {runs} run(s) with and "
        f"{runs} without each of: {', '.join(s.name for s in scenarios)}; {args.preset or 'mobile'} preset; "
        f"{os.cpu_count()} CPUs; load avg {_load()}")
    workdir = Path(tempfile.mkdtemp(prefix="lumi-bench-storefront-"))
    started = time.monotonic()
    outcomes: list[tuple[Scenario, list[Run], Any]] = []
    try:
        with ExitStack() as exit_stack:
            stack = StorefrontStack(exit_stack, workdir)
            stack.install_and_sync()
            url = stack.product_page()
            say(f"  product page: {url}")
            bare_url = f"{url}?lumi=off"  # devshop's switch: the same page without app blocks or embeds
            for scenario in scenarios:
                say(f"\n  {scenario.name}: {scenario.blocks}")
                stack.place_blocks("product", scenario.blocks.get("product", []))
                stack.place_blocks("embeds", scenario.blocks.get("embeds", []))
                extra = scenario.warm(stack, url, bare_url)  # templates compiled, feeds cached, as in production
                results = compare(url, bare_url, runs, args.preset, workdir, scenario)
                outcomes.append((scenario, results, scenario.weigh(stack, url, bare_url, results, extra)))
    finally:
        if args.keep_reports:
            say(f"\nreports and logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    summary = []
    for scenario, results, weights in outcomes:
        lost = report_scores(scenario, results)
        scenario.report(weights)
        summary.append((f"the {scenario.name} costs <= {scenario.goal_points:g} Lighthouse points ({lost:+.0f})",
                        met(lost <= scenario.goal_points)))
    table(f"summary ({time.monotonic() - started:.0f} s in all)", ("goal", "result"), summary)
    return 0


def compare(url: str, bare_url: str, runs: int, preset: str | None, workdir: Path, scenario: Scenario) -> list[Run]:
    """Lighthouse on the page with and without the app block, interleaved so both see the same machine."""
    results: list[Run] = []
    variants = [("with", url), ("without", bare_url)]
    for number in range(1, runs + 1):
        for variant, page_url in variants if number % 2 else variants[::-1]:
            report = workdir / f"lighthouse-{scenario.key}-{variant}-{number}.json"
            result, took = lighthouse(page_url, report, preset)
            run = parse(variant, result, took)
            results.append(run)
            extra = f"; runtime error: {run.runtime_error}" if run.runtime_error else ""
            say(f"  run {number} {variant:>7} the {scenario.name}: score {run.score:.0f}, "
                + ", ".join(f"{label} {run.metrics.get(key, float('nan')):.{3 if not unit else 0}f}{unit}"
                            for key, label, unit in METRICS)
                + f" ({took:.1f} s, {len(run.requests)} requests){extra}")
            for warning in run.warnings:
                say(f"    lighthouse warning: {warning}")
    return results


def report_scores(scenario: Scenario, results: list[Run]) -> float:
    """Print the scores and metrics with and without the block; return the median points lost."""
    with_runs = [r for r in results if r.variant == "with"]
    without_runs = [r for r in results if r.variant == "without"]
    with_score = statistics.median(r.score for r in with_runs)
    without_score = statistics.median(r.score for r in without_runs)
    lost = without_score - with_score
    rows = [(f"performance score, median of {len(with_runs)}", f"{with_score:.0f} with it",
             f"{without_score:.0f} without", f"{lost:+.0f} points lost", f"<= {scenario.goal_points:g}",
             met(lost <= scenario.goal_points))]
    for key, label, unit in METRICS:
        a = [r.metrics[key] for r in with_runs if key in r.metrics]
        b = [r.metrics[key] for r in without_runs if key in r.metrics]
        if a and b:
            ma, mb = statistics.median(a), statistics.median(b)
            rows.append((f"  {label}, median", _metric(ma, unit), _metric(mb, unit),
                         ("+" if ma >= mb else "") + _metric(ma - mb, unit), "(info)", ""))
    table(f"Lighthouse, devshop's product page, the {scenario.name}", GOAL_HEADER, rows)
    say(f"  scores with the {scenario.name}: {[round(r.score) for r in with_runs]}; without: "
        f"{[round(r.score) for r in without_runs]}")
    durations = [r.seconds for r in results]
    say(f"  one Lighthouse run took {statistics.median(durations):.1f} s (median; min {min(durations):.1f} s, "
        f"max {max(durations):.1f} s) on this machine")
    seen: dict[str, dict[str, Any]] = {}
    for item in block_requests(with_runs[len(with_runs) // 2]):
        seen.setdefault(urlsplit(item["url"]).path, item)
    rows2 = [(_short(path), item.get("mimeType", ""), kib(item.get("transferSize") or 0),
              kib(item.get("resourceSize") or 0)) for path, item in seen.items()]
    if rows2:
        rows2.append(("total", "", kib(sum(i.get("transferSize") or 0 for i in seen.values())),
                      kib(sum(i.get("resourceSize") or 0 for i in seen.values()))))
    table(f"the {scenario.name}'s requests as Lighthouse saw them (transfer = on the wire, headers included)",
          ("request", "type", "transfer", "resource"), rows2 or [("none seen", "", "", "")])
    return lost


def weights_table(title: str, weights: list[Weight]) -> None:
    rows = [(_short(urlsplit(w.url).path), kib(w.raw), f"{kib(w.served)} {w.encoding or 'identity'}",
             kib(w.gzipped)) for w in weights]
    rows.append(("total", kib(sum(w.raw for w in weights)), kib(sum(w.served for w in weights)),
                 kib(sum(w.gzipped for w in weights))))
    table(title, ("request", "raw", "as served", "gzip -9"), rows)


class Scenario:
    key = ""
    name = ""
    goal_points = 0.0
    blocks: dict[str, list[dict[str, Any]]] = {}

    def warm(self, stack: StorefrontStack, url: str, bare_url: str) -> Any:
        for page_url in (url, bare_url):
            requests.get(page_url, timeout=30).raise_for_status()
        bare = requests.get(bare_url, timeout=30)
        if "lumi-storefront" in bare.text:
            raise RuntimeError(f"{bare_url} still has Lumi's blocks or their assets")
        return None

    def weigh(self, stack: StorefrontStack, url: str, bare_url: str, results: list[Run], extra: Any) -> Any:
        raise NotImplementedError

    def report(self, weights: Any) -> None:
        raise NotImplementedError


class FeedBlock(Scenario):
    """The product-feed block in the product template (a similar-products row)."""

    key, name, goal_points = "feed", "feed block", GOAL_POINTS
    blocks = {"product": [BLOCK], "embeds": []}

    def warm(self, stack: StorefrontStack, url: str, bare_url: str) -> list[str]:
        """Load both variants once; return the block's feed paths (from its data-url) for the byte count."""
        super().warm(stack, url, bare_url)
        page = requests.get(url, timeout=30)
        feeds = [html.unescape(u) for u in re.findall(r'data-url="([^"]+)"', page.text)]
        if not feeds:
            raise RuntimeError(f"no lumi-feed data-url on {url}: is the block rendered?\n{page.text[:2000]}")
        for path in feeds:
            answer = requests.get(stack.origin + path, timeout=30)
            if answer.status_code != 200 or not answer.json().get("products"):
                raise RuntimeError(f"the block's feed {path} answered {answer.status_code}: {answer.text[:300]}")
        return feeds

    def weigh(self, stack: StorefrontStack, url: str, bare_url: str, results: list[Run], extra: Any) -> Any:
        weights = [measure(stack.origin + path) for path in asset_paths(results) + extra]
        return weights, (measure(url), measure(bare_url))

    def report(self, weights: Any) -> None:
        assets_and_feeds, (page, bare) = weights
        weights_table("the feed block's bytes measured with requests (bodies only)", assets_and_feeds)
        assets = [w for w in assets_and_feeds if "/cdn/extensions/" in w.url]
        say(f"  initial JavaScript + CSS: {kib(sum(w.raw for w in assets))} raw, "
            f"{kib(sum(w.gzipped for w in assets))} gzipped (budget 8 KiB gzipped); with the feed JSON: "
            f"{kib(sum(w.gzipped for w in assets_and_feeds))} gzipped")
        say(f"  the block's markup in the page (skeleton cards included): +{kib(page.raw - bare.raw)} raw, "
            f"+{kib(page.gzipped - bare.gzipped)} gzipped (the page: {kib(page.raw)} raw with it, {kib(bare.raw)} "
            f"without; served {page.encoding or 'uncompressed'})")


class ChatEmbed(Scenario):
    """The support-chat app embed (target body) on the same product page, no other app block: its launcher
    before the shopper touches it, then the panel loaded on first interaction, measured in Chromium."""

    key, name, goal_points = "chat", "chat embed", EMBED_GOAL_POINTS
    blocks = {"product": [], "embeds": [{"type": "support-chat"}]}

    def warm(self, stack: StorefrontStack, url: str, bare_url: str) -> None:
        super().warm(stack, url, bare_url)
        if "lumi-chat" not in requests.get(url, timeout=30).text:
            raise RuntimeError(f"the chat embed is not on {url}: is support-chat.liquid in the extension?")

    def weigh(self, stack: StorefrontStack, url: str, bare_url: str, results: list[Run], extra: Any) -> Any:
        """Bytes the page loads for Lumi before and after the shopper opens the panel (Playwright, real Chromium):
        each response body from the extension's assets and the app proxy, measured raw and gzipped."""
        from playwright.sync_api import sync_playwright

        before: list[Weight] = []
        after: list[Weight] = []
        opened = False

        def record(response: Any) -> None:
            path = urlsplit(response.url).path
            if not any(p in path for p in ("/cdn/extensions/lumi-storefront/", "/apps/lumi/")):
                return
            try:
                body = response.body()
            except Exception:  # noqa: BLE001 - a stream still open (SSE) or a redirect: counted as empty
                body = b""
            (after if opened else before).append(Weight(response.url, len(body), len(body), "",
                                                        len(gzip.compress(body, 9))))

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
            try:
                page = browser.new_page(viewport={"width": 412, "height": 823})
                page.on("response", record)
                page.goto(url, wait_until="networkidle")
                launcher = page.locator("#lumi-chat .lumi-chat__launcher").first
                launcher.wait_for(state="visible", timeout=15_000)
                page.wait_for_load_state("networkidle")
                opened = True
                launcher.click()
                page.locator("dialog[open]").first.wait_for(state="visible", timeout=15_000)
                page.wait_for_load_state("networkidle")
            finally:
                browser.close()
        return before, after

    def report(self, weights: Any) -> None:
        before, after = weights
        weights_table("the chat embed's bytes before the shopper opens it (launcher, its config)", before)
        weights_table("loaded when the shopper opens the panel (panel code, session)", after)
        assets = [w for w in before if "/cdn/extensions/" in w.url]
        say(f"  before opening: JavaScript + CSS {kib(sum(w.gzipped for w in assets))} gzipped (budget 3 KiB); "
            f"everything Lumi: {kib(sum(w.gzipped for w in before))} gzipped; after opening: "
            f"+{kib(sum(w.gzipped for w in after))} gzipped, whole widget "
            f"{kib(sum(w.gzipped for w in before + after if '/cdn/extensions/' in w.url))} gzipped (budget 8 KiB)")


SCENARIOS: list[Scenario] = [FeedBlock(), ChatEmbed()]


def asset_paths(results: list[Run]) -> list[str]:
    paths: list[str] = []
    for run in results:
        if run.variant == "with":
            for item in block_requests(run):
                path = urlsplit(item["url"]).path
                if "/cdn/extensions/" in path and path not in paths:
                    paths.append(path)
    return paths


def _metric(value: float, unit: str) -> str:
    return f"{value:.0f} {unit}" if unit else f"{value:.3f}"


def _short(path: str) -> str:
    return path if len(path) <= 70 else path[:67] + "..."


def _chromium_version() -> str:
    try:
        out = subprocess.run([str(CHROMIUM), "--version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return out.stdout.strip().removeprefix("Chromium ").split(" ")[0] or "?"


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
