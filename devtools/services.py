"""Real Redis, Meilisearch and other child processes on free ports, stopped without leftovers."""

from __future__ import annotations

import collections
import ctypes
import ctypes.util
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import IO, TextIO

REPO_ROOT: Path = Path(__file__).resolve().parent.parent

MEILISEARCH_VERSION = "1.21.0"
DEFAULT_MEILI_MASTER_KEY = "lumi-dev-master-key-0123456789"
BOOTSTRAP_HINT = "run `make dev` or scripts/bootstrap.sh"

ReadyCheck = Callable[[], bool]


class ServiceError(RuntimeError):
    """A server or child process could not be found, started, or made ready."""


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


# No proxies: every URL we check is on this machine, and *_proxy variables must not apply.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(url: str, *, timeout: float = 2.0, headers: Mapping[str, str] | None = None) -> tuple[int, bytes] | None:
    """GET url → (status, body) for any HTTP answer (4xx/5xx included); None if nothing answered."""
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as err:
        with err:
            return int(err.code), err.read()
    except (OSError, ValueError):
        return None


def http_ok(url: str) -> ReadyCheck:
    """A readiness check: url answers with a 2xx status."""

    def check() -> bool:
        answer = http_get(url, timeout=1.0)
        return answer is not None and 200 <= answer[0] < 300

    return check


def http_answers(url: str) -> ReadyCheck:
    """A readiness check: url answers with any HTTP status at all."""
    return lambda: http_get(url, timeout=1.0) is not None


def redis_binary() -> str:
    """Path of `redis-server` on PATH, or ServiceError saying how to get it."""
    found = shutil.which("redis-server")
    if not found:
        raise ServiceError(f"redis-server is not on PATH: {BOOTSTRAP_HINT} (it installs Debian's redis-server)")
    return found


def meilisearch_binary() -> Path:
    """REPO_ROOT/.tools/bin/meilisearch (put there by scripts/bootstrap.sh), or ServiceError."""
    path = REPO_ROOT / ".tools" / "bin" / "meilisearch"
    if not path.is_file() or not os.access(path, os.X_OK):
        raise ServiceError(f"Meilisearch {MEILISEARCH_VERSION} is not installed at {path}: {BOOTSTRAP_HINT}")
    return path


# --------------------------------------------------------------------------------------------
# Children that die with their parent
# --------------------------------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1
_LIBC: ctypes.CDLL | None = None
if sys.platform.startswith("linux"):
    try:
        _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:  # pragma: no cover - no usable libc: children just won't get a death signal
        _LIBC = None


def session_pids(sid: int) -> list[int]:
    """The live processes in session `sid` (Linux: read from /proc; elsewhere an empty list).

    A process that leaves its parent's process group but not its session (RQ's work horse calls
    setpgrp()) escapes a group kill; a session kill still finds it.
    """
    found: list[int] = []
    if not sys.platform.startswith("linux"):
        return found
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):  # gone meanwhile
            continue
        # after the command: state, ppid, pgrp, session
        if int(fields[3]) == sid and fields[0] not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def _child_preexec(death_signal: int | None) -> Callable[[], None] | None:
    """Code run in the forked child before exec: ask Linux to signal it when we die.

    Linux sends the signal when the *thread* that started the child ends, so start
    long-lived children from the main thread (pytest fixtures and devtools.dev do).
    """
    if _LIBC is None or not death_signal:
        return None
    libc = _LIBC
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, int(death_signal), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), int(death_signal))

    return preexec


_COLOURS = (36, 33, 32, 35, 34, 91, 96, 93, 92, 95, 94)


class LinePrinter:
    """Thread-safe, honcho-style output: `12:00:01 web      | text`, one colour per name."""

    def __init__(self, stream: TextIO | None = None, *, colour: bool | None = None, width: int = 8) -> None:
        self.stream = stream if stream is not None else sys.stdout
        if colour is None:
            isatty = getattr(self.stream, "isatty", None)
            colour = bool(isatty and isatty()) and "NO_COLOR" not in os.environ
        self.colour = colour
        self.width = width
        self._codes: dict[str, int] = {}
        self._next = itertools.cycle(_COLOURS)
        self._lock = threading.Lock()

    def add(self, name: str, colour: int | None = None) -> None:
        """Reserve a colour for name (and widen the name column if needed)."""
        with self._lock:
            if name not in self._codes:
                self._codes[name] = colour if colour is not None else next(self._next)
            self.width = max(self.width, len(name))

    def line(self, name: str, text: str) -> None:
        """Print one line of text from name."""
        self.add(name)
        stamp = datetime.now().strftime("%H:%M:%S")
        prefix = f"{stamp} {name.ljust(self.width)} |"
        if self.colour:
            prefix = f"\033[{self._codes[name]}m{prefix}\033[0m"
        with self._lock:
            self.stream.write(f"{prefix} {text}\n")
            self.stream.flush()


class ManagedProcess:
    """One child process in its own process group, its output teed line by line.

    Output (stdout and stderr together) goes to `printer` prefixed with `name` (if
    given), to `log_path` (if given), and into a buffer of its last lines, which every
    ServiceError quotes. `stop()` sends TERM to the process (unless `terminate()` already
    did), waits, then KILLs its whole session. The child gets `death_signal` if this (Python)
    process dies first.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str | os.PathLike[str]],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        ready: str | ReadyCheck | None = None,
        ready_timeout: float = 30.0,
        printer: LinePrinter | None = None,
        log_path: str | os.PathLike[str] | None = None,
        tail_lines: int = 200,
        stop_timeout: float = 10.0,
        death_signal: int | None = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.argv = [os.fspath(a) for a in argv]
        self.env = dict(os.environ if env is None else env)
        self.cwd = os.fspath(cwd) if cwd is not None else None
        self.ready_check: ReadyCheck | None = http_ok(ready) if isinstance(ready, str) else ready
        self.ready_timeout = ready_timeout
        self.printer = printer
        self.log_path = Path(log_path) if log_path is not None else None
        self.stop_timeout = stop_timeout
        self.death_signal = death_signal
        self._lines: collections.deque[str] = collections.deque(maxlen=tail_lines)
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._log: IO[str] | None = None
        self._terminated = False

    # -- state -------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    def poll(self) -> int | None:
        """The exit code if the process has ended, else None (also None if never started)."""
        return self.returncode

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def tail(self, lines: int = 30) -> str:
        """The last lines of the process's output."""
        return "\n".join(list(self._lines)[-lines:])

    @property
    def output_lines(self) -> list[str]:
        return list(self._lines)

    # -- life cycle --------------------------------------------------------------------------
    def start(self, timeout: float | None = None) -> ManagedProcess:
        """Spawn the process, then wait until it is ready (if it has a readiness check)."""
        if self.is_running():
            raise ServiceError(f"{self.name} is already running (pid {self.pid})")
        self._cleanup_io()
        self._lines.clear()
        self._terminated = False
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "a", encoding="utf-8")  # closed in stop()
        try:
            self._proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: we signal it as a whole; no terminal ^C
                preexec_fn=_child_preexec(self.death_signal),
            )
        except OSError as err:
            self._cleanup_io()
            raise ServiceError(f"{self.name}: could not start {self.argv[0]}: {err}") from err
        self._reader = threading.Thread(target=self._pump, name=f"output-{self.name}", daemon=True)
        self._reader.start()
        if self.ready_check is not None:
            self.wait_ready(self.ready_timeout if timeout is None else timeout)
        return self

    def wait_ready(self, timeout: float | None = None) -> None:
        """Poll the readiness check until it passes; on exit or time-out stop and raise ServiceError."""
        check = self.ready_check
        if check is None:
            return
        limit = self.ready_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        delay = 0.02
        while True:
            code = self.poll()
            if code is not None:
                self._drain()
                self.stop()
                raise ServiceError(self._describe(f"exited with code {code} before it was ready"))
            try:
                if check():
                    return
            except Exception:  # a failing check just means "not yet"
                pass
            if time.monotonic() >= deadline:
                self.stop()
                raise ServiceError(self._describe(f"was not ready after {limit:g} s"))
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the process to end by itself; returns its exit code (ServiceError on time-out)."""
        if self._proc is None:
            raise ServiceError(f"{self.name} was never started")
        try:
            code = self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise ServiceError(self._describe(f"did not finish within {timeout:g} s")) from None
        self._drain()
        self._cleanup_io()
        return code

    def terminate(self) -> None:
        """Send TERM to the process (once) without waiting: stop() then waits for it."""
        proc = self._proc
        if proc is None or self._terminated or proc.poll() is not None:
            return
        self._terminated = True
        # TERM to the leader only, so a supervisor (gunicorn master, RQ worker) can shut its
        # own children down in order; whatever is left of its session after that gets KILL.
        try:
            proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass

    def stop(self, timeout: float | None = None) -> int | None:
        """TERM the process, wait up to `timeout`, then KILL its session. Idempotent; returns the exit code."""
        proc = self._proc
        if proc is None:
            return None
        limit = self.stop_timeout if timeout is None else timeout
        if proc.poll() is None:
            self.terminate()
            try:
                proc.wait(limit)
            except subprocess.TimeoutExpired:
                self._kill_session()
                proc.wait()
        # Anything the leader left behind (forked workers, a work horse in its own group) goes too.
        self._kill_session()
        self._drain()
        self._cleanup_io()
        return proc.returncode

    # -- internals ---------------------------------------------------------------------------
    def _kill_session(self) -> None:
        """KILL the process's group and everything else in its session (start_new_session made it the leader
        of both: pgid == sid == pid), e.g. an RQ work horse, which has a process group of its own."""
        if self._proc is None:
            return
        sid = self._proc.pid
        try:
            os.killpg(sid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for pid in session_pids(sid):
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def _pump(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        stream = proc.stdout
        for raw in iter(stream.readline, b""):
            text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            self._lines.append(text)
            if self.printer is not None:
                self.printer.line(self.name, text)
            log = self._log
            if log is not None:
                try:
                    log.write(text + "\n")
                    log.flush()
                except ValueError:  # closed under us during stop()
                    pass

    def _drain(self, timeout: float = 2.0) -> None:
        """Let the output thread finish reading what the process wrote."""
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(timeout)

    def _cleanup_io(self) -> None:
        reader_done = self._reader is None or not self._reader.is_alive()
        if self._proc is not None and self._proc.stdout is not None and reader_done:
            self._proc.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None

    def _describe(self, problem: str) -> str:
        tail = self.tail(30) or "(no output)"
        return f"{self.name} {problem}.\ncommand: {' '.join(self.argv)}\nlast output:\n{tail}"


# --------------------------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------------------------

_PORT_TAKEN = "Address already in use"


class _Server:
    """Shared life cycle of a server process on a fixed port with a (possibly temporary) workdir."""

    name = "server"

    def __init__(
        self,
        *,
        port: int | None,
        workdir: Path | None,
        printer: LinePrinter | None,
        log_path: Path | None,
    ) -> None:
        self._auto_port = port is None
        self.port: int = free_port() if port is None else port
        self._workdir_arg = Path(workdir) if workdir is not None else None
        self.workdir: Path | None = self._workdir_arg
        self._own_tmp: Path | None = None
        self.printer = printer
        self.log_path = log_path
        self.process: ManagedProcess | None = None
        self._started_once = False

    # subclasses provide these
    def _argv(self, workdir: Path) -> list[str]:
        raise NotImplementedError

    def _env(self) -> dict[str, str]:
        return dict(os.environ)

    def _ready(self) -> bool:
        raise NotImplementedError

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def is_running(self) -> bool:
        return self.process is not None and self.process.is_running()

    def _start(self, limit: float) -> None:
        """Start the server and wait until it answers; ServiceError (with its output) if it does not."""
        if self.is_running():
            return
        # A fresh automatic port may be taken between choosing and binding: pick another.
        attempts = 3 if self._auto_port and not self._started_once else 1
        for attempt in range(1, attempts + 1):
            if port_in_use(self.port):
                if attempt < attempts:
                    self.port = free_port()
                    continue
                raise ServiceError(f"{self.name}: port {self.port} is already in use by another process")
            try:
                self._start_once(limit)
                break
            except ServiceError as err:
                self._remove_tmp()
                if attempt < attempts and _PORT_TAKEN in str(err):
                    self.port = free_port()
                    continue
                raise
        self._started_once = True

    def _start_once(self, timeout: float) -> None:
        if self._workdir_arg is not None:
            self._workdir_arg.mkdir(parents=True, exist_ok=True)
            self.workdir = self._workdir_arg
        else:
            self._own_tmp = Path(tempfile.mkdtemp(prefix=f"lumi-{self.name}-{self.port}-"))
            self.workdir = self._own_tmp
        self.process = ManagedProcess(
            self.name,
            self._argv(self.workdir),
            env=self._env(),
            cwd=self.workdir,
            ready=self._ready,
            ready_timeout=timeout,
            printer=self.printer,
            log_path=self.log_path,
            stop_timeout=10.0,
        )
        self.process.start()

    def terminate(self) -> None:
        """Send TERM to the server without waiting; stop() then waits for it."""
        if self.process is not None:
            self.process.terminate()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the server (TERM, wait up to `timeout`, then KILL) and remove the temporary directory it made.
        Idempotent."""
        if self.process is not None:
            self.process.stop(timeout)
        self._remove_tmp()

    def _remove_tmp(self) -> None:
        if self._own_tmp is not None:
            shutil.rmtree(self._own_tmp, ignore_errors=True)
            if self.workdir == self._own_tmp:
                self.workdir = None
            self._own_tmp = None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.is_running() else "stopped"
        return f"<{type(self).__name__} port={self.port} {state}>"


def _redis_command(port: int, *args: str, timeout: float = 1.0) -> bytes:
    """Send one command to Redis on 127.0.0.1:port; the raw reply (first line, or a bulk string's body)."""
    payload = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload.encode())
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, rest = data.partition(b"\r\n")
        if not head.startswith(b"$") or head == b"$-1":
            return head
        size = int(head[1:])
        while len(rest) < size:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        return rest[:size]


class RedisServer(_Server):
    """A private `redis-server` on 127.0.0.1:<port>, no persistence, data in a temp dir.

    `appendonly=True` turns on AOF persistence, fsynced every second (`--appendonly yes --appendfsync everysec`),
    as Heroku's production Redis plans run; give it a `workdir` so a restart finds the file again (a temporary
    directory is removed when the server stops).
    """

    name = "redis"

    def __init__(
        self,
        *,
        port: int | None = None,
        workdir: Path | None = None,
        binary: str | None = None,
        printer: LinePrinter | None = None,
        log_path: Path | None = None,
        appendonly: bool = False,
    ) -> None:
        super().__init__(port=port, workdir=workdir, printer=printer, log_path=log_path)
        self.binary = binary
        self.appendonly = appendonly

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10) -> RedisServer:
        """Start and wait until it answers (ServiceError with its last output if it does not)."""
        self._start(timeout)
        return self

    def restart(self, timeout: float = 10) -> RedisServer:
        """Stop, then start again on the same port."""
        self.stop()
        return self.start(timeout)

    def __enter__(self) -> RedisServer:
        return self.start()

    def _argv(self, workdir: Path) -> list[str]:
        binary = self.binary or redis_binary()
        # Each flag separately, so an empty value (--save "") survives as an argument.
        return [
            binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            *(("--appendonly", "yes", "--appendfsync", "everysec") if self.appendonly else ("--appendonly", "no")),
            "--dir", str(workdir),
            "--daemonize", "no",
            "--logfile", "",
        ]  # fmt: skip

    def _ready(self) -> bool:
        # PING alone could be answered by somebody else's server on this port: check it is ours.
        info = _redis_command(self.port, "INFO", "server")
        if f"process_id:{self.pid}\r\n".encode() not in info:
            return False
        # With AOF it answers while still replaying the file (every command then fails with LOADING): wait for it.
        return not self.appendonly or b"loading:0\r\n" in _redis_command(self.port, "INFO", "persistence")


class MeiliServer(_Server):
    """A private Meilisearch on 127.0.0.1:<port> with a master key and its database in workdir."""

    name = "meilisearch"

    def __init__(
        self,
        *,
        port: int | None = None,
        workdir: Path | None = None,
        master_key: str = DEFAULT_MEILI_MASTER_KEY,
        binary: str | None = None,
        log_level: str = "WARN",
        printer: LinePrinter | None = None,
        log_path: Path | None = None,
    ) -> None:
        super().__init__(port=port, workdir=workdir, printer=printer, log_path=log_path)
        self.master_key = master_key
        self.binary = binary
        self.log_level = log_level

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> MeiliServer:
        """Start and wait until it answers (ServiceError with its last output if it does not)."""
        self._start(timeout)
        return self

    def restart(self, timeout: float = 30) -> MeiliServer:
        """Stop, then start again on the same port."""
        self.stop()
        return self.start(timeout)

    def __enter__(self) -> MeiliServer:
        return self.start()

    def _argv(self, workdir: Path) -> list[str]:
        binary = self.binary or str(meilisearch_binary())
        return [
            binary,
            "--http-addr", f"127.0.0.1:{self.port}",
            "--db-path", str(workdir / "data.ms"),
            "--dump-dir", str(workdir / "dumps"),
            "--snapshot-dir", str(workdir / "snapshots"),
            "--master-key", self.master_key,
            "--env", "development",
            "--no-analytics",
            "--log-level", self.log_level,
        ]  # fmt: skip

    def _env(self) -> dict[str, str]:
        # Meilisearch reads MEILI_* variables as options; ours (MEILI_URL, ...) must not leak in.
        return {k: v for k, v in os.environ.items() if not k.startswith("MEILI_")}

    def _ready(self) -> bool:
        answer = http_get(f"{self.url}/health", timeout=1.0)
        return answer is not None and answer[0] == 200 and b'"available"' in answer[1]


__all__ = [
    "BOOTSTRAP_HINT",
    "DEFAULT_MEILI_MASTER_KEY",
    "MEILISEARCH_VERSION",
    "REPO_ROOT",
    "LinePrinter",
    "ManagedProcess",
    "MeiliServer",
    "RedisServer",
    "ServiceError",
    "free_port",
    "http_answers",
    "http_get",
    "http_ok",
    "meilisearch_binary",
    "port_in_use",
    "redis_binary",
    "session_pids",
]
