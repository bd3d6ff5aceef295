"""Builds the external clients (Redis, Meilisearch) from settings, once per process."""

from __future__ import annotations

import http.client
import json
import os
import select
import socket
import threading
import weakref
from collections.abc import Callable, Mapping
from functools import lru_cache
from time import monotonic
from typing import Any
from urllib.parse import urlsplit

import meilisearch
import redis
from meilisearch._httprequests import HttpRequests
from meilisearch.config import Config
from meilisearch.errors import MeilisearchApiError, MeilisearchCommunicationError, MeilisearchTimeoutError
from meilisearch.index import Index

from core.settings import Settings


def _redis(settings: Settings, **options: object) -> redis.Redis:
    # As many connections as a web worker has requests (WEB_WORKER_CONNECTIONS): a gevent worker runs them all at
    # once and each may be waiting on a reply, while redis-py's default pool raises "Too many connections" past 100.
    # Past the cap a command waits (cooperatively, REDIS_TIMEOUT at most) for a free connection. Other processes
    # open only the few they use.
    pool = redis.BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.web_worker_connections,
        timeout=settings.redis_timeout,  # waiting for a free connection
        socket_timeout=settings.redis_timeout,
        socket_connect_timeout=settings.redis_timeout,
        health_check_interval=30,
        **options,
    )
    return redis.Redis.from_pool(pool)  # closing the client closes its pool


def make_redis(settings: Settings) -> redis.Redis:
    """Redis for Lumi's own data: str in, str out, short timeouts so a sick Redis fails fast."""
    return _redis(settings, decode_responses=True)


def make_queue_redis(settings: Settings) -> redis.Redis:
    """Redis for RQ, which stores pickled bytes and must not decode responses."""
    return _redis(settings)


def make_meili(settings: Settings) -> PooledMeili:
    # Room for a connection per request a web worker serves at once (a gevent worker's connections),
    # so that concurrent queries never close the ones they opened; those a burst leaves unused are closed later.
    return PooledMeili(settings.meili_url, settings.meili_master_key, timeout=settings.meili_timeout,
                       pool_size=settings.web_worker_connections)


# --- Meilisearch over pooled keep-alive connections ------------------------------------------------------------
# The SDK sends every call through `requests.get/post/...`: a new session and TCP connection each time (plus
# requests' proxy lookups in os.environ): about 0.8 ms of CPU per call, as much as the rest of a feed miss.
# `requests.Session` would keep the connection, but over a kept-alive urllib3 connection Meilisearch's answers
# above a few KB arrive ~40 ms late (the Nagle / delayed-ACK stall; 12 cards are ~5 KB); http.client does not.


class _NoDelayConnection(http.client.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _NoDelayTLSConnection(http.client.HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


# (scheme, host, port, timeout): a changed URL or timeout gets connections of its own.
Origin = tuple[str, str, int, float | None]
# Errors meaning the server closed a kept-alive connection before reading the request (idle timeout, restart).
_CLOSED_BY_SERVER = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError, http.client.RemoteDisconnected)


@lru_cache(maxsize=16)
def _split(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path prefix) of a Meilisearch URL."""
    parts = urlsplit(url)
    scheme = parts.scheme or "http"
    return scheme, parts.hostname or "127.0.0.1", parts.port or (443 if scheme == "https" else 80), \
        parts.path.rstrip("/")


Idle = dict[Origin, list[tuple[http.client.HTTPConnection, float]]]  # per origin: (connection, idle since)


def _close_all(idle: Idle) -> None:
    for conns in idle.values():
        for conn, _ in conns:
            conn.close()
    idle.clear()


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """An idle keep-alive socket is never readable unless the server closed it (EOF) or broke protocol."""
    if conn.sock is None:
        return True
    poller = select.poll()
    poller.register(conn.sock, select.POLLIN)
    return bool(poller.poll(0))


class MeiliConnections:
    """Keep-alive HTTP/1.1 connections to Meilisearch, shared by the threads (or greenlets) of one process.

    A request takes an idle connection (the most recent first) or opens one, and gives it back once the answer
    is read; at most `size` stay idle, and one left unused for `max_idle` seconds is closed (so a burst's extra
    connections do not linger). A connection the server closed (Meilisearch restarted, or a proxy's idle timeout)
    is noticed before reuse, or when the request on it fails before any answer, and the request is sent once more
    on a new connection. A forked child (RQ's work horse) starts with no connections of its own.
    """

    def __init__(self, size: int, max_idle: float = 60.0) -> None:
        self.size = size
        self.max_idle = max_idle
        self._idle: Idle = {}
        self._lock = threading.Lock()
        self._pid = os.getpid()
        # Closes what is idle when the client is dropped (a test's app torn down), rather than leaving it to the
        # sockets' finalizers and their ResourceWarnings.
        self._finalizer = weakref.finalize(self, _close_all, self._idle)

    def request(self, url: str, timeout: float | None, method: str, path: str, body: bytes | None,
                headers: Mapping[str, str]) -> tuple[int, bytes]:
        """(status, body) of one HTTP request; socket and protocol errors are raised as they come."""
        scheme, host, port, prefix = _split(url)
        origin = (scheme, host, port, timeout)
        conn, reused = self._take(origin)
        while True:
            try:
                conn.request(method, prefix + path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
            except _CLOSED_BY_SERVER:
                conn.close()
                if not reused:
                    raise
                conn, reused = self._open(origin), False
                continue
            except BaseException:
                conn.close()  # a half-sent request or half-read answer must never meet the next request
                raise
            if response.will_close:
                conn.close()
            else:
                self._give(origin, conn)
            return response.status, data

    def _take(self, origin: Origin) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's sockets are the parent's
                _close_all(self._idle)
                self._pid = os.getpid()
            idle = self._idle.get(origin)
            while idle:
                conn, _ = idle.pop()
                if not _dropped(conn):
                    return conn, True
                conn.close()
        return self._open(origin), False

    def _open(self, origin: Origin) -> http.client.HTTPConnection:
        scheme, host, port, timeout = origin
        kind = _NoDelayTLSConnection if scheme == "https" else _NoDelayConnection
        return kind(host, port, timeout=timeout)

    def _give(self, origin: Origin, conn: http.client.HTTPConnection) -> None:
        now = monotonic()
        with self._lock:
            idle = self._idle.setdefault(origin, [])
            while idle and now - idle[0][1] > self.max_idle:  # the least recently used come first
                idle.pop(0)[0].close()
            if len(idle) < self.size and self._pid == os.getpid():
                idle.append((conn, now))
                return
        conn.close()

    def idle_count(self) -> int:
        with self._lock:
            return sum(len(conns) for conns in self._idle.values())

    def close(self) -> None:
        with self._lock:
            _close_all(self._idle)


class _Answer:
    """The parts of a `requests.Response` that the SDK's callers and MeilisearchApiError read."""

    def __init__(self, status: int, content: bytes) -> None:
        self.status_code = status
        self.content = content
        self.text = content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)


class _PooledHttp(HttpRequests):
    """The SDK's transport with its requests calls replaced by MeiliConnections; same bodies, headers, results
    and errors. Shared by threads: it never mutates its headers (the SDK's own sets Content-Type per call)."""

    def __init__(self, config: Config, connections: MeiliConnections,
                 custom_headers: Mapping[str, str] | None = None) -> None:
        super().__init__(config, custom_headers)
        self.connections = connections

    def send_request(self, http_method: Callable[..., Any], path: str, body: Any = None,
                     content_type: str | None = None, *, serializer: type[json.JSONEncoder] | None = None) -> Any:
        method = http_method.__name__.upper()  # the SDK passes requests.get, requests.post, ...
        headers = dict(self.headers)
        if content_type:
            headers["Content-Type"] = content_type
        data: bytes | None
        if method == "GET":
            data = None
        elif isinstance(body, bytes):
            data = body
        elif isinstance(body, (bool, dict)) or body:  # as the SDK encodes bodies
            data = json.dumps(body, cls=serializer).encode()
        else:
            data = b"" if body == "" else b"null"
        try:
            status, content = self.connections.request(self.config.url, self.config.timeout, method, "/" + path,
                                                       data, headers)
        except TimeoutError as err:
            raise MeilisearchTimeoutError(str(err)) from err
        except (OSError, http.client.HTTPException) as err:
            raise MeilisearchCommunicationError(f"{type(err).__name__}: {err}") from err
        answer = _Answer(status, content)
        if status >= 400:
            raise MeilisearchApiError(f"{status} error for url: {self.config.url}/{path}", answer)  # type: ignore[arg-type]
        return json.loads(content) if content else answer


class PooledMeili(meilisearch.Client):
    """The meilisearch SDK's client, every call of it and of its indexes (`client.index(uid)`) and task handlers
    going over one MeiliConnections pool. (Indexes the SDK builds itself, in get_index, get_indexes and
    create_index, keep its per-call connections: Lumi uses those at release time only.)"""

    def __init__(self, url: str, api_key: str | None = None, *, timeout: float | None = None,
                 pool_size: int = 8) -> None:
        super().__init__(url, api_key, timeout=timeout)  # type: ignore[arg-type]
        self.connections = MeiliConnections(pool_size)
        self.http = _PooledHttp(self.config, self.connections, self._custom_headers)
        self.task_handler.http = self.http

    def index(self, uid: str) -> Index:
        index = super().index(uid)
        index.http = self.http
        index.task_handler.http = self.http
        return index

    def close(self) -> None:
        """Close the idle connections (more are opened if the client is used again)."""
        self.connections.close()
