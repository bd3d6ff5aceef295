"""Process checks shared by the devtools tests."""

from __future__ import annotations

import time
from pathlib import Path


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
