"""devtools.edge.EdgeServer: its rendered config, its life cycle, and clear errors when nginx is missing or wrong."""

from __future__ import annotations

import re
import socket
import subprocess
from pathlib import Path

import pytest

import devtools.edge as edge_module
from devtools.edge import (
    TEMPLATE_PATH,
    EdgeServer,
    NginxUnavailable,
    nginx_binary,
    nginx_version,
    normalise_upstream,
    render_template,
)
from devtools.services import ServiceError, free_port, http_get
from tests.devtools.helpers import pid_alive, wait_gone


def children(pid: int) -> list[int]:
    """Direct children of pid (nginx: workers, cache manager, cache loader), from /proc/*/stat."""
    found: list[int] = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_start_answers_on_its_port_and_stop_leaves_no_process_or_file_behind() -> None:
    edge = EdgeServer(upstream="127.0.0.1:9")  # nothing listens on the upstream: proxied paths get 502
    edge.start()
    try:
        assert edge.is_running() and edge.url == f"http://127.0.0.1:{edge.port}"
        assert edge.version is not None and edge.version >= (1, 11, 10)
        workdir = edge.workdir
        assert workdir is not None and (workdir / "nginx.conf").is_file() and (workdir / "cache").is_dir()
        master = edge.pid
        assert master is not None
        helpers = children(master)
        assert len(helpers) >= 2, "at least a worker and the cache manager"
        assert http_get(f"{edge.url}/_edge/health") == (200, f"{edge.health_token}\n".encode())
        answer = http_get(f"{edge.url}/api/index")
        assert answer is not None and answer[0] == 502
    finally:
        edge.stop()
    assert not edge.is_running()
    assert all(wait_gone(pid, 5) for pid in [master, *helpers])
    assert not workdir.exists(), "the temporary directory is removed"
    edge.stop()  # idempotent


def test_the_rendered_config_is_valid_and_touches_nothing_outside_its_directory(tmp_path: Path) -> None:
    edge = EdgeServer(upstream="http://127.0.0.1:8000/", workdir=tmp_path / "edge")
    assert edge.upstream == "127.0.0.1:8000"
    workdir = tmp_path / "edge"
    text = edge.render(workdir)
    assert "{{" not in text
    directives = [line.split("#", 1)[0] for line in text.splitlines()]
    paths = [p for line in directives for p in re.findall(r'"(/[^"]*)"', line)]
    assert paths and all(p.startswith(str(workdir)) for p in paths), paths
    assert not any(re.search(r"/(var|etc|run)/", line) for line in directives)
    assert "daemon off;" in text and "master_process on;" in text
    # nginx itself agrees the file is valid (-t reads it and checks every directive and path).
    for sub in ("cache", "temp", "logs"):
        (workdir / sub).mkdir(parents=True)
    (workdir / "nginx.conf").write_text(text)
    done = subprocess.run([nginx_binary(), "-t", "-p", f"{workdir}/", "-c", str(workdir / "nginx.conf"),
                           "-e", "stderr"], capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert "syntax is ok" in done.stderr


def test_every_placeholder_needs_a_value() -> None:
    with pytest.raises(ValueError, match="no value for placeholder.*upstream"):
        render_template({"listen": "127.0.0.1:1"}, TEMPLATE_PATH)


@pytest.mark.parametrize(
    "upstream",
    ["127.0.0.1:8000; include /etc/passwd", "https://127.0.0.1:8000", "127.0.0.1", "", "host:80 backup"],
)
def test_an_upstream_that_is_not_host_port_is_refused(upstream: str) -> None:
    with pytest.raises(ValueError, match="host:port"):
        normalise_upstream(upstream)


def test_an_occupied_port_is_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        edge = EdgeServer(upstream="127.0.0.1:9", port=sock.getsockname()[1])
        with pytest.raises(ServiceError, match="already in use"):
            edge.start()
        assert not edge.is_running()


def test_without_nginx_the_error_says_to_run_bootstrap(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(edge_module.shutil, "which", lambda name: None)
    monkeypatch.setattr(edge_module, "DEBIAN_NGINX", tmp_path / "no-nginx")
    with pytest.raises(NginxUnavailable, match=r"nginx is not installed.*bootstrap\.sh"):
        nginx_binary()
    with pytest.raises(ServiceError, match="bootstrap"):
        EdgeServer(upstream="127.0.0.1:9").start()


def test_a_too_old_nginx_is_refused_before_it_starts(tmp_path: Path) -> None:
    fake = tmp_path / "nginx"
    fake.write_text("#!/bin/sh\necho 'nginx version: nginx/1.10.3' >&2\n")
    fake.chmod(0o755)
    assert nginx_version(str(fake)) == (1, 10, 3)
    edge = EdgeServer(upstream="127.0.0.1:9", binary=str(fake))
    with pytest.raises(NginxUnavailable, match=r"nginx 1\.10\.3 .* too old.*1\.11\.10"):
        edge.start()
    assert edge.process is None


def test_a_config_nginx_rejects_fails_start_with_its_message(tmp_path: Path) -> None:
    template = tmp_path / "broken.conf.template"
    template.write_text(TEMPLATE_PATH.read_text().replace("proxy_cache_lock on;", "proxy_cache_lock maybe;"))
    edge = EdgeServer(upstream="127.0.0.1:9", template=template)
    with pytest.raises(ServiceError, match=r"exited with code 1 before it was ready(.|\n)*proxy_cache_lock"):
        edge.start(timeout=10)
    assert not edge.is_running()


def test_two_edges_run_side_by_side_with_their_own_caches() -> None:
    first, second = EdgeServer(upstream="127.0.0.1:9"), EdgeServer(upstream="127.0.0.1:9", port=free_port())
    try:
        first.start()
        second.start()
        assert first.port != second.port and first.workdir != second.workdir
        assert pid_alive(first.pid or 0) and pid_alive(second.pid or 0)
    finally:
        first.stop()
        second.stop()
