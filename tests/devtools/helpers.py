"""Process checks and a `python -m devtools.dev` driver shared by the devtools tests."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from devtools.services import REPO_ROOT

# Variables a developer's shell might hold that would change what the stack does.
LUMI_VARS = [
    "REDIS_URL", "MEILI_URL", "MEILI_MASTER_KEY", "APP_URL", "PORT", "SHOPIFY_ADMIN_BASE_URL", "DEVSHOP_URL",
    "SHOPIFY_API_KEY", "SHOPIFY_API_SECRET", "LUMI_ENCRYPTION_KEYS", "LUMI_ENV", "WEB_CONCURRENCY",
    "SMTP_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL", "EDGE_PORT", "LUMI_DEV_MODEL",
]  # fmt: skip


def pid_alive(pid: int) -> bool:
    """True while pid is a live process (a zombie waiting to be reaped counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in {"Z", "X"}


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    """Wait until pid is gone; False if it is still alive after timeout."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def descendants(root: int) -> dict[int, str]:
    """Every live process below root (children, grandchildren, ...): pid → command line. Linux /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):  # gone meanwhile
                continue
            if fields[0] not in {"Z", "X"}:
                parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    commands = {}
    for pid in found:
        try:
            commands[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
    return commands


def listening_ports(pids: set[int] | None = None) -> set[int]:
    """TCP ports in LISTEN state (IPv4 and IPv6), only those of sockets held by `pids` when given. Linux /proc."""
    inodes: set[str] | None = None
    if pids is not None:
        inodes = set()
        for pid in pids:
            try:
                fds = list(Path(f"/proc/{pid}/fd").iterdir())
            except OSError:
                continue
            for fd in fds:
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "0A" and (inodes is None or fields[9] in inodes):  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll condition until it holds (True) or timeout passes (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True


def dev_args(tmp_path: Path) -> list[str]:
    """`python -m devtools.dev` options that keep a test's stack away from the repository's .env and .dev/."""
    return ["--env-file", str(tmp_path / "no.env"), "--data-dir", str(tmp_path / "dev-data")]


class Driven:
    """`python -m devtools.dev` (optionally with the fake stack) in a subprocess, its output collected."""

    def __init__(self, args: list[str], env: dict[str, str], *, fake: bool = True) -> None:
        module = "tests.devtools.fakes" if fake else "devtools.dev"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
            if line is None:
                break
            self.lines.append(line)
            if text in line:
                return
        raise AssertionError(f"{text!r} not seen; output:\n" + "\n".join(self.lines))

    def finish(self, timeout: float = 30) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        while not self._queue.empty():
            line = self._queue.get()
            if line is not None:
                self.lines.append(line)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)
