"""A clean stop, always: nothing `make dev` started outlives it, however it is stopped.

The real stack (`python -m devtools.dev`, on free ports, data in tmp_path) is stopped the way process
supervisors and IDE stop buttons do it (SIGTERM to its process group, SIGKILL 5 s later), and by a
SIGKILL of make dev's own process alone. Every process it started (redis-server, meilisearch, devshop,
devmodel, the mailbox, gunicorn's master and workers, the RQ worker and its children, nginx's master and
workers) must be gone and every port they listened on free. Linux only: it reads /proc.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devtools.dev import ENV_FILE_NAME, ENV_FILE_PID
from devtools.services import REPO_ROOT, free_port, http_get
from tests.devtools.helpers import (
    LUMI_VARS,
    Driven,
    descendants,
    dev_args,
    listening_ports,
    pid_alive,
    wait_until,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process table from /proc"),
]

SUPERVISOR_GRACE = 5.0  # seconds between a supervisor's SIGTERM and its SIGKILL (systemd, IDEs, honcho...)


@dataclass
class Stack:
    driven: Driven
    processes: dict[int, str]  # every process below make dev seen while it ran: pid → command line
    ports: set[int]  # every TCP port those processes listened on
    env_file: Path

    @property
    def pid(self) -> int:
        return self.driven.proc.pid

    def alive(self) -> dict[int, str]:
        return {pid: command for pid, command in self.processes.items() if pid_alive(pid)}

    def still_listening(self) -> set[int]:
        return self.ports & listening_ports()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    env = {k: v for k, v in os.environ.items() if k not in LUMI_VARS}
    env["PORT"] = str(free_port())
    env["LUMI_DEV_MODEL"] = "1"  # the stand-in model runs too
    driven = Driven(dev_args(tmp_path), env, fake=False)
    running = Stack(driven, {}, set(), tmp_path / "dev-data" / ENV_FILE_NAME)
    try:
        driven.wait_for("Ctrl-C stops everything", 180)
        answer = http_get(f"http://127.0.0.1:{env['PORT']}/readyz", timeout=10)
        assert answer is not None and answer[0] == 200, answer
        # A few looks, so short-lived grandchildren (RQ's work horse during the first sync) are seen too.
        for _ in range(5):
            running.processes.update(descendants(running.pid))
            time.sleep(0.3)
        running.ports = listening_ports(set(running.processes))
        commands = " | ".join(running.processes.values())
        for expected in ("redis-server", "meilisearch", "-m devshop", "-m devmodel", "-m devtools.mailbox",
                         "gunicorn", "-m jobs.worker"):  # fmt: skip
            assert expected in commands, f"{expected} not running: {commands}"
        assert sum("gunicorn" in c for c in running.processes.values()) >= 3, "master and 2 workers"
        if "storefront edge ready" in driven.output:
            assert "nginx: master" in commands and "nginx: worker" in commands, commands
        assert int(env["PORT"]) in running.ports, running.ports
        assert running.env_file.is_file()
        yield running
    finally:
        driven.kill()
        for pid in running.alive():  # never leave a failed test's processes behind
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def test_a_supervisors_sigterm_then_sigkill_to_the_group_leaves_nothing_behind(stack: Stack) -> None:
    os.killpg(stack.pid, signal.SIGTERM)
    try:
        code: int | None = stack.driven.proc.wait(SUPERVISOR_GRACE)
    except subprocess.TimeoutExpired:
        code = None
    try:
        os.killpg(stack.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    stack.driven.finish(10)
    tail = "\n".join(stack.driven.lines[-40:])
    assert code == 0, f"make dev did not stop by itself within {SUPERVISOR_GRACE} s of SIGTERM; its last lines:\n{tail}"
    # Killed processes may take a moment to leave the process table.
    assert wait_until(lambda: not stack.alive(), 1.0), f"still running: {stack.alive()}"
    assert wait_until(lambda: not stack.still_listening(), 1.0), f"ports still taken: {stack.still_listening()}"
    assert not stack.env_file.exists(), "a clean stop removes .dev/env"


def test_a_sigkill_of_make_dev_alone_takes_every_child_with_it(stack: Stack) -> None:
    os.kill(stack.pid, signal.SIGKILL)  # its own process only: the children get their death signal
    stack.driven.finish(10)
    assert wait_until(lambda: not stack.alive(), 30), f"outlived make dev: {stack.alive()}"
    assert wait_until(lambda: not stack.still_listening(), 5), f"ports still taken: {stack.still_listening()}"

    # The environment file stays behind, and `make lumi` sees that it is stale.
    assert f"{ENV_FILE_PID}='{stack.pid}'" in stack.env_file.read_text()
    result = subprocess.run(
        [sys.executable, "-m", "devtools.lumi", "--env-file", str(stack.env_file), "inventory", "x.myshopify.com"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert f"is stale: the make dev that wrote it (pid {stack.pid}) is no longer running" in result.stderr
