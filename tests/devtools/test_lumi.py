"""`make lumi ARGS=...` (devtools.lumi): operator commands against the running `make dev`, through .dev/env."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
from pathlib import Path

from dotenv import dotenv_values

from devtools.dev import ENV_FILE_NAME, ENV_FILE_PID
from devtools.services import REPO_ROOT, free_port
from tests.conftest import python_env
from tests.devtools.helpers import LUMI_VARS, Driven, dev_args

SHOP = "lumi-demo.myshopify.com"


def make_lumi(env_file: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """What `make lumi ARGS="..."` runs, with .dev/env at env_file."""
    return subprocess.run(
        [sys.executable, "-m", "devtools.lumi", "--env-file", str(env_file), *args],
        cwd=REPO_ROOT, env=python_env(env or {}), capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_the_running_stacks_environment_is_in_dev_env_for_make_lumi(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in LUMI_VARS}
    env["PORT"] = str(free_port())
    env_file = tmp_path / "dev-data" / ENV_FILE_NAME
    driven = Driven(dev_args(tmp_path), env)  # the fake stack: real Redis and Meilisearch
    try:
        driven.wait_for("Ctrl-C stops everything", 60)
        driven.wait_for("operator commands: make lumi", 10)
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600, "it holds the stack's secrets"
        values = dotenv_values(env_file)
        redis_url = re.search(r"redis ready at (\S+)", driven.output)
        meili_url = re.search(r"meilisearch ready at (\S+)", driven.output)
        assert redis_url and meili_url
        assert values["REDIS_URL"] == redis_url.group(1) and values["MEILI_URL"] == meili_url.group(1)
        assert values["APP_URL"] == f"http://localhost:{env['PORT']}" and values["PORT"] == env["PORT"]
        assert values["DEVSHOP_URL"] and values["SHOPIFY_ADMIN_BASE_URL"] == f"{values['DEVSHOP_URL']}/shops/{{shop}}"
        assert values["SMTP_URL"], "the dev mailbox"
        assert values["LUMI_ENCRYPTION_KEYS"] and values["MEILI_MASTER_KEY"] and values["SHOPIFY_API_SECRET"]
        assert values[ENV_FILE_PID] == str(driven.proc.pid)
        assert "PATH" not in values and "HOME" not in values, "only Lumi's variables, not the whole shell"

        result = make_lumi(env_file, "inventory", SHOP)
        assert result.returncode == 0, result.stderr
        assert isinstance(json.loads(result.stdout), dict)

        driven.proc.send_signal(signal.SIGTERM)
        assert driven.finish(30) == 0, driven.output
    finally:
        driven.kill()
    assert not env_file.exists(), "make dev removes it when it stops"
    result = make_lumi(env_file, "inventory", SHOP)
    assert result.returncode != 0
    assert "make dev is not running (there is no " in result.stderr and "Traceback" not in result.stderr


def test_a_stale_dev_env_is_refused(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    env_file = tmp_path / ENV_FILE_NAME
    env_file.write_text(f"{ENV_FILE_PID}='{dead.pid}'\nREDIS_URL='redis://127.0.0.1:1/0'\n")
    result = make_lumi(env_file, "inventory", SHOP)
    assert result.returncode != 0
    assert f"is stale: the make dev that wrote it (pid {dead.pid}) is no longer running" in result.stderr


def test_a_configuration_error_comes_through_make_lumi_as_one_line(tmp_path: Path) -> None:
    env_file = tmp_path / ENV_FILE_NAME
    env_file.write_text(f"{ENV_FILE_PID}='{os.getpid()}'\nLUMI_ENV='development'\n")  # a live pid: ours
    result = make_lumi(env_file, "inventory", SHOP)
    assert result.returncode != 0
    assert result.stderr == "Configuration error: APP_URL: is required but not set\n"


def test_make_help_lists_make_lumi() -> None:
    result = subprocess.run(["make", "--no-print-directory", "help"], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0
    plain = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)
    assert re.search(r"^ +lumi +Operator command against the running `make dev`", plain, re.MULTILINE), plain
