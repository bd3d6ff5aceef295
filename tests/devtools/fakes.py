"""A DevStack whose devshop, release, web and worker are the stand-ins in fake_procs.py."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from devtools.dev import DevStack

FAKE = str(Path(__file__).with_name("fake_procs.py"))


class FakeStack(DevStack):
    """Real Redis and Meilisearch (unless their URLs are set); everything else faked.

    Settings come from the environment so `python -m devtools.dev` can be driven in a subprocess:
    FAKE_RELEASE_CODE, FAKE_WORKER_SECONDS, FAKE_READY_AFTER.
    """

    def devshop_argv(self, port: int) -> list[str]:
        return [sys.executable, FAKE, "http", str(port)]

    def release_argv(self) -> list[str]:
        return [sys.executable, FAKE, "exit", self.env.get("FAKE_RELEASE_CODE", "0")]

    def web_argv(self) -> list[str]:
        return [sys.executable, FAKE, "http", self.env["PORT"], self.env.get("FAKE_READY_AFTER", "2")]

    def worker_argv(self) -> list[str]:
        return [sys.executable, FAKE, "sleep", self.env.get("FAKE_WORKER_SECONDS", "3600")]


def run_main() -> int:
    """`python -m devtools.dev` with FakeStack in place of DevStack."""
    import devtools.dev

    devtools.dev.DevStack = FakeStack  # type: ignore[misc]
    return devtools.dev.main(sys.argv[1:])


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(run_main())
