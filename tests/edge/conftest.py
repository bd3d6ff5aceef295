"""The edge tests' fixtures: a scripted origin and the nginx edge in front of it (one of each per test)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.edge import EdgeServer
from tests.edge.origin import Origin


@pytest.fixture
def origin() -> Iterator[Origin]:
    server = Origin().start()
    yield server
    server.stop()


@pytest.fixture
def edge(origin: Origin, tmp_path: Path) -> Iterator[EdgeServer]:
    server = EdgeServer(upstream=f"127.0.0.1:{origin.port}", workdir=tmp_path / "edge",
                        log_path=tmp_path / "edge.log").start()
    yield server
    server.stop()
