"""`make dev` puts the edge in front of the web process: EDGE_PORT, the banner, and stopping it with the rest."""

from __future__ import annotations

import io
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

import devtools.edge as edge_module
from devtools.dev import DevStack
from devtools.edge import EdgeServer, NginxUnavailable
from devtools.services import LinePrinter, ServiceError, free_port
from tests.devtools.helpers import pid_alive, wait_gone
from tests.edge.origin import Origin, fetch

FEED = "/proxy/feeds/new-arrivals?shop=lumi-demo.myshopify.com"


@pytest.fixture
def origin() -> Iterator[Origin]:
    server = Origin().start()
    yield server
    server.stop()


def make_stack(origin: Origin, tmp_path: Path, **env: str) -> DevStack:
    """A DevStack whose web process is the origin (start_edge only needs PORT)."""
    return DevStack({"PORT": str(origin.port), "APP_URL": f"http://localhost:{origin.port}",
                     "MEILI_URL": "-", "REDIS_URL": "-", "SHOPIFY_API_KEY": "k", **env},
                    LinePrinter(io.StringIO()), data_dir=tmp_path)


def output(stack: DevStack) -> str:
    stream = stack.printer.stream
    assert isinstance(stream, io.StringIO)
    return stream.getvalue()


def test_the_edge_fronts_web_shows_in_the_banner_and_stops_with_the_rest(origin: Origin, tmp_path: Path) -> None:
    stack = make_stack(origin, tmp_path)
    try:
        edge = stack.start_edge()
        assert edge is not None and [r.name for r in stack.running] == ["edge"]
        assert stack.env["EDGE_URL"] == f"http://localhost:{edge.port}"
        assert edge.upstream == f"127.0.0.1:{origin.port}"
        assert "storefront edge" in stack.banner() and stack.env["EDGE_URL"] in stack.banner()
        assert re.search(rf"storefront edge ready at {re.escape(edge.url)} .*nginx \d", output(stack))
        assert [fetch(edge.port, FEED).cache for _ in range(2)] == ["MISS", "HIT"]
        assert origin.hits() == 1
        master = edge.pid
        assert master is not None and pid_alive(master)
        stack.check_children()  # a running edge is a healthy child
    finally:
        stack.stop()
    assert wait_gone(master, 5)
    assert "stopping edge" in output(stack) and stack.running == []


def test_edge_port_is_honoured_and_checked_before_anything_starts(origin: Origin, tmp_path: Path) -> None:
    port = free_port()
    stack = make_stack(origin, tmp_path, EDGE_PORT=str(port))
    try:
        edge = stack.start_edge()
        assert edge is not None and edge.port == port
    finally:
        stack.stop()

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = make_stack(origin, tmp_path, PORT=str(free_port()), EDGE_PORT=str(sock.getsockname()[1]))
        with pytest.raises(ServiceError, match="EDGE_PORT .* already in use"):
            taken.start()
        assert taken.running == []
    with pytest.raises(ServiceError, match="EDGE_PORT must be a TCP port"):
        make_stack(origin, tmp_path, EDGE_PORT="eighty").edge_port()


def test_without_nginx_dev_says_so_and_runs_without_the_edge(
    origin: Origin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing() -> str:
        raise NginxUnavailable("nginx is not installed: run `make dev` or scripts/bootstrap.sh")

    monkeypatch.setattr(edge_module, "nginx_binary", missing)
    stack = make_stack(origin, tmp_path)
    assert stack.start_edge() is None
    assert stack.running == [] and "EDGE_URL" not in stack.env and "storefront edge" not in stack.banner()
    assert "! storefront edge not started: nginx is not installed" in output(stack)


def test_when_port_plus_one_is_held_by_a_connection_the_edge_takes_a_free_port(tmp_path: Path) -> None:
    # A bound socket that does not listen looks free to a connect() probe yet makes nginx's bind() fail,
    # as the local end of an outgoing connection does: what broke `make dev --check` on an ephemeral PORT.
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        held = blocker.getsockname()[1]
        stack = DevStack({"PORT": str(held - 1), "APP_URL": "http://localhost:1"}, LinePrinter(io.StringIO()),
                         data_dir=tmp_path)
        try:
            edge = stack.start_edge()
            assert isinstance(edge, EdgeServer) and edge.is_running() and edge.port != held
            assert f"port {held} is taken" in output(stack)
            assert [r.name for r in stack.running] == ["edge"]
        finally:
            stack.stop()
