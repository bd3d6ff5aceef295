"""A private nginx edge cache (deploy/edge/nginx.conf.template) in front of the web process, on a free port."""

from __future__ import annotations

import grp
import os
import pwd
import re
import secrets
import shutil
import subprocess
from pathlib import Path

from devtools.services import BOOTSTRAP_HINT, REPO_ROOT, LinePrinter, ServiceError, _Server, http_get

TEMPLATE_PATH: Path = REPO_ROOT / "deploy" / "edge" / "nginx.conf.template"
# stale-while-revalidate / stale-if-error are read from Cache-Control since nginx 1.11.10.
NGINX_MIN_VERSION: tuple[int, int, int] = (1, 11, 10)
HEALTH_PATH = "/_edge/health"
DEBIAN_NGINX = Path("/usr/sbin/nginx")  # where Debian puts it; /usr/sbin is not on every user's PATH
CACHE_KEYS_ZONE = "10m"  # shared memory for keys (≈ 80,000 entries)
CACHE_MAX_SIZE = "256m"  # on disk, least recently used entries evicted beyond it

_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
# host:port, with host a name, an IPv4 address or a bracketed IPv6 address; nothing that could
# end a directive or start a new one in the rendered config.
_UPSTREAM = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):\d{1,5}$")


class NginxUnavailable(ServiceError):
    """No usable nginx here (not installed, or too old): bootstrap's job, not a failure of the edge itself."""


def nginx_binary() -> str:
    """Path of `nginx` (on PATH, or Debian's /usr/sbin/nginx), or NginxUnavailable saying how to get it."""
    found = shutil.which("nginx")
    if found:
        return found
    if DEBIAN_NGINX.is_file() and os.access(DEBIAN_NGINX, os.X_OK):
        return str(DEBIAN_NGINX)
    raise NginxUnavailable(f"nginx is not installed (not on PATH, no /usr/sbin/nginx): {BOOTSTRAP_HINT} "
                           "(it installs Debian's nginx)")


def nginx_version(binary: str | None = None) -> tuple[int, ...]:
    """The version of `binary -v` (nginx prints it on stderr) as a tuple of ints, e.g. (1, 22, 1)."""
    exe = binary or nginx_binary()
    try:
        done = subprocess.run([exe, "-v"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise ServiceError(f"could not run {exe} -v: {err}") from err
    match = re.search(r"nginx/(\d+(?:\.\d+)*)", done.stderr + done.stdout)
    if match is None:
        raise ServiceError(f"{exe} -v printed no nginx version: {(done.stderr + done.stdout).strip()!r}")
    return tuple(int(part) for part in match.group(1).split("."))


def normalise_upstream(upstream: str) -> str:
    """'127.0.0.1:8000' (also accepted: 'http://127.0.0.1:8000/') → '127.0.0.1:8000'; ValueError otherwise."""
    value = upstream.strip()
    if value.startswith("http://"):
        value = value[len("http://"):].rstrip("/")
    if not _UPSTREAM.match(value):
        raise ValueError(f"upstream must be host:port (plain HTTP, e.g. 127.0.0.1:8000), not {upstream!r}")
    return value


def render_template(values: dict[str, str], template: Path = TEMPLATE_PATH) -> str:
    """The template with every {{name}} replaced; ValueError naming any placeholder without a value."""
    text = template.read_text(encoding="utf-8")
    missing = sorted({name for name in _PLACEHOLDER.findall(text) if name not in values})
    if missing:
        raise ValueError(f"{template}: no value for placeholder(s) {', '.join(missing)}")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def _user_directive() -> str:
    """`user <me> <my group>;` when running as root (nginx would otherwise drop workers to www-data)."""
    if os.geteuid() != 0:
        return "# (not root: workers run as the current user; no `user` directive)"
    user = pwd.getpwuid(os.geteuid()).pw_name
    group = grp.getgrgid(os.getegid()).gr_name
    return f"user {user} {group};"


class EdgeServer(_Server):
    """A private nginx on 127.0.0.1:<port> caching /proxy/feeds/* of `upstream` (host:port), all files in workdir.

    `EdgeServer(upstream="127.0.0.1:8000").start()`; then `edge.url`, `edge.stop()`. Without a workdir it
    makes (and removes on stop) a temporary one holding nginx.conf, cache/, temp/, logs/access.log and the
    pid file. Errors go to stderr, which ManagedProcess tees to `printer` / `log_path` and quotes on failure.
    """

    name = "edge"

    def __init__(
        self,
        *,
        upstream: str,
        port: int | None = None,
        workdir: Path | None = None,
        binary: str | None = None,
        worker_processes: int = 1,
        error_log_level: str = "warn",
        template: Path = TEMPLATE_PATH,
        printer: LinePrinter | None = None,
        log_path: Path | None = None,
    ) -> None:
        super().__init__(port=port, workdir=workdir, printer=printer, log_path=log_path)
        self.upstream = normalise_upstream(upstream)
        self.binary = binary
        self.worker_processes = worker_processes
        self.error_log_level = error_log_level
        self.template = Path(template)
        self.health_token = f"lumi-edge-{secrets.token_hex(8)}"
        self.version: tuple[int, ...] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path | None:
        """The rendered nginx.conf of the current run (None before start)."""
        return self.workdir / "nginx.conf" if self.workdir is not None else None

    @property
    def cache_dir(self) -> Path | None:
        return self.workdir / "cache" if self.workdir is not None else None

    @property
    def access_log_path(self) -> Path | None:
        """One line per request with its cache status (the `edge` log_format)."""
        return self.workdir / "logs" / "access.log" if self.workdir is not None else None

    @property
    def version_text(self) -> str:
        return ".".join(map(str, self.version)) if self.version else "?"

    def start(self, timeout: float = 10) -> EdgeServer:
        """Check nginx (≥ 1.11.10), start it and wait until it answers its health check (ServiceError if not)."""
        binary = self.binary or nginx_binary()
        self.version = nginx_version(binary)
        if self.version < NGINX_MIN_VERSION:
            wanted = ".".join(map(str, NGINX_MIN_VERSION))
            raise NginxUnavailable(f"nginx {self.version_text} at {binary} is too old: the edge needs ≥ {wanted} "
                                   "(stale-while-revalidate / stale-if-error from Cache-Control)")
        self.binary = binary
        self._start(timeout)
        return self

    def restart(self, timeout: float = 10) -> EdgeServer:
        """Stop, then start again on the same port (a fresh temporary workdir means an empty cache)."""
        self.stop()
        return self.start(timeout)

    def __enter__(self) -> EdgeServer:
        return self.start()

    def render(self, workdir: Path) -> str:
        """The nginx.conf for this server with its files under workdir."""
        return render_template({
            "listen": f"127.0.0.1:{self.port}",
            "upstream": self.upstream,
            "worker_processes": str(int(self.worker_processes)),
            "user_directive": _user_directive(),
            "pid_path": str(workdir / "nginx.pid"),
            "error_log": "stderr",
            "error_log_level": self.error_log_level,
            "access_log": f'"{workdir / "logs" / "access.log"}" edge',
            "temp_dir": str(workdir / "temp"),
            "cache_dir": str(workdir / "cache"),
            "keys_zone_size": CACHE_KEYS_ZONE,
            "max_size": CACHE_MAX_SIZE,
            "health_token": self.health_token,
        }, self.template)

    def _argv(self, workdir: Path) -> list[str]:
        # Called by _Server once workdir exists: lay out the directory and write the config there.
        for sub in ("cache", "temp", "logs"):
            (workdir / sub).mkdir(parents=True, exist_ok=True)
        config = workdir / "nginx.conf"
        config.write_text(self.render(workdir), encoding="utf-8")
        binary = self.binary or nginx_binary()
        # -p: relative paths resolve in workdir; -e: start-up errors to stderr, not /var/log/nginx.
        return [binary, "-p", f"{workdir}/", "-c", str(config), "-e", "stderr"]

    def _ready(self) -> bool:
        # Something else could answer on this port: only our own token counts.
        answer = http_get(f"{self.url}{HEALTH_PATH}", timeout=1.0)
        return answer is not None and answer[0] == 200 and answer[1].strip() == self.health_token.encode()


__all__ = [
    "HEALTH_PATH",
    "NGINX_MIN_VERSION",
    "TEMPLATE_PATH",
    "EdgeServer",
    "NginxUnavailable",
    "nginx_binary",
    "nginx_version",
    "normalise_upstream",
    "render_template",
]
