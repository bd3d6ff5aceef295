"""The Procfile's processes refuse to start with a missing or bad variable, naming it, and start when valid."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import requests

from devtools.services import REPO_ROOT, free_port
from tests.conftest import python_env

GUNICORN = [str(REPO_ROOT / ".venv" / "bin" / "gunicorn"), "-c", "gunicorn.conf.py", "web:create_app()"]
WORKER = [sys.executable, "-m", "jobs.worker"]
RELEASE = [sys.executable, "-m", "feeds.release"]


def run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=REPO_ROOT, env=python_env(env), capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("cmd", [GUNICORN, WORKER, RELEASE], ids=["web", "worker", "release"])
@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"MEILI_URL": None}, "MEILI_URL: is required"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL: must be a URL"),
        ({"LUMI_ENCRYPTION_KEYS": "nope"}, "LUMI_ENCRYPTION_KEYS: key #1 is not a valid Fernet key"),
    ],
)
def test_process_refuses_bad_config_and_names_the_variable(
    cmd: list[str], change: dict[str, str | None], named: str, env: dict[str, str]
) -> None:
    bad = {k: v for k, v in env.items() if k not in change}
    bad.update({k: v for k, v in change.items() if v is not None})
    result = run(cmd, bad)
    assert result.returncode != 0
    assert f"Configuration error: {named}" in result.stderr
    assert "Traceback" not in result.stderr


def test_gunicorn_serves_the_app_with_the_repo_config(env: dict[str, str]) -> None:
    port = free_port()
    proc = subprocess.Popen(
        GUNICORN, cwd=REPO_ROOT, env=python_env({**env, "PORT": str(port), "WEB_CONCURRENCY": "1"}),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
                break
            except (requests.ConnectionError, requests.Timeout):  # not up yet, or a slow first boot
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(proc.stdout.read() if proc.stdout else "gunicorn did not start") from None
                time.sleep(0.1)
        assert response.status_code == 200
        assert response.headers["X-Request-ID"]
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    # The structured request line is there; gunicorn's own access log (with query strings) is off.
    assert '"path": "/healthz"' in out
