"""`make lumi ARGS="inventory lumi-demo.myshopify.com"`: an operator command against the running `make dev` stack.

Runs `flask --app web lumi ARGS` with the environment `make dev` wrote to .dev/env (the URLs of its private
Redis, Meilisearch and devshop, its keys), so the command sees exactly the data the stack serves.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from dotenv import dotenv_values

from devtools.dev import DEV_DATA_DIR, ENV_FILE_NAME, ENV_FILE_PID, shown_path
from devtools.services import REPO_ROOT


class StackNotRunning(Exception):
    """There is no running `make dev` whose environment we could use."""


def stack_environment(env_file: Path) -> dict[str, str]:
    """The variables in env_file, if the make dev that wrote it still runs; StackNotRunning otherwise."""
    if not env_file.is_file():
        raise StackNotRunning(
            f"make dev is not running (there is no {shown_path(env_file)}): "
            "start it with `make dev` in another terminal, then try again"
        )
    values = {name: value for name, value in dotenv_values(env_file).items() if value is not None}
    pid = values.pop(ENV_FILE_PID, "")
    if not pid.isdigit() or not _alive(int(pid)):
        raise StackNotRunning(
            f"{shown_path(env_file)} is stale: the make dev that wrote it (pid {pid or '?'}) is no "
            "longer running; start `make dev` again"
        )
    return values


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="make lumi ARGS=...",
        description="Run `flask --app web lumi ARGS` against the running `make dev` stack.",
        epilog="Without ARGS it lists the commands.",
    )
    parser.add_argument(
        "--env-file",
        type=Path,
        default=DEV_DATA_DIR / ENV_FILE_NAME,
        help="the environment make dev wrote (default: .dev/env)",
    )
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the command and its arguments")
    options = parser.parse_args(argv)
    try:
        values = stack_environment(options.env_file)
    except StackNotRunning as err:
        sys.stderr.write(f"make lumi: {err}\n")
        return 1
    argv = [sys.executable, "-m", "flask", "--app", "web", "lumi", *options.args]
    os.chdir(REPO_ROOT)  # where `--app web` is found
    sys.stdout.flush()
    # The stack's environment as make dev gave it to its processes; flask must not add .env on top (make dev
    # read it at start-up, and it may have changed since).
    env = {**os.environ, **values, "FLASK_SKIP_DOTENV": "1"}
    os.execve(sys.executable, argv, env)  # the command's exit code is ours


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:  # gone, or somebody else's process: not our make dev
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
