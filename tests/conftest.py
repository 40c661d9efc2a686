"""Shared fixtures: small, fast settings; fresh caches; one LocalCluster per session.

No test may reach the network beyond this machine's loopback. pytest-socket
(``--allow-hosts`` in setup.cfg) refuses ``socket.connect`` to any other
address; :func:`network_guard` adds what it cannot see (a name look-up leaves
the machine before the connect is refused, and curl_cffi, yfinance's default
HTTP client, connects from C) and fails the test even when the code under test
swallowed the refusal (the live data sources turn every error into a
DataSourceError).
"""
from __future__ import annotations

import ipaddress
import logging
import socket
from urllib.parse import urlsplit

import dask
import pytest
import pytest_socket
from xdist_plan import pytest_collection_modifyitems, pytest_xdist_make_scheduler  # noqa: F401  (hooks: make test's plan)

import stockdag  # noqa: F401  (loads the package defaults into dask.config)
from stockdag.domain.data.cache import reset_caches

# Small windows keep a refit request around a quarter of a second.
SMALL = {
    "stockdag.models.window": 120,
    "stockdag.models.error_days": 10,
    "stockdag.data.min_history": 150,
    "stockdag.data.history_days": 200,
    "stockdag.data.news_days": 320,
}


@pytest.fixture
def small():
    """Small model windows for fast refit requests."""
    with dask.config.set(SMALL):
        yield SMALL


@pytest.fixture(scope="session")
def small_settings():
    """The small windows as a mapping, for fixtures wider than a test to pass to the processes they start."""
    return SMALL


@pytest.fixture(autouse=True)
def fresh_caches():
    reset_caches()
    yield
    reset_caches()


@pytest.fixture(scope="session")
def cluster():
    """A LocalCluster of 2 single-threaded worker processes on loopback."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0", silence_logs=logging.WARNING) as lc:
        yield lc


@pytest.fixture
def client(cluster):
    from distributed import Client

    with Client(cluster) as c:
        yield c


LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def _is_loopback(host) -> bool:
    if isinstance(host, bytes):
        host = host.decode()
    if not host:
        return False
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.lower() in LOOPBACK_NAMES


def _resolves_locally(host) -> bool:
    # an address literal needs no DNS (pytest-socket judges the connect); a name may
    if host is None or _is_loopback(host):
        return True
    if isinstance(host, bytes):
        host = host.decode()
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return host == socket.gethostname()  # /etc/hosts; Dask asks for it


@pytest.fixture(autouse=True)
def network_guard(monkeypatch):
    """Refuse non-loopback look-ups and curl_cffi requests; fail the test if any was tried.

    Yields the list of refused attempts: a test that makes one on purpose
    asserts it and clears the list.
    """
    refused: list[str] = []

    def refuse(what: str):
        refused.append(what)
        raise pytest_socket.SocketBlockedError(f"A test tried to {what}; only loopback is allowed.")

    def guard_lookup(lookup):
        def guarded(host, *args, **kwargs):
            if not _resolves_locally(host):
                refuse(f"resolve {host!r}")
            return lookup(host, *args, **kwargs)

        return guarded

    for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex"):
        monkeypatch.setattr(socket, name, guard_lookup(getattr(socket, name)))

    try:
        from curl_cffi import requests as curl_requests
    except ImportError:
        curl_requests = None
    if curl_requests is not None:
        for cls in (curl_requests.Session, curl_requests.AsyncSession):
            def guarded_request(self, method, url, *args, _request=cls.request, **kwargs):
                if not _is_loopback(urlsplit(str(url)).hostname):
                    refuse(f"open {url!r} with curl_cffi")
                return _request(self, method, url, *args, **kwargs)

            monkeypatch.setattr(cls, "request", guarded_request)

    # pytest-socket installs its connect guard before fixtures are set up and
    # removes it after: record its refusals too, without outliving the test
    connect = socket.socket.connect

    def recorded_connect(sock, *args):
        try:
            return connect(sock, *args)
        except pytest_socket.SocketConnectBlockedError as exc:
            refused.append(str(exc))
            raise

    recorded_connect.__wrapped__ = connect
    socket.socket.connect = recorded_connect
    try:
        yield refused
    finally:
        if socket.socket.connect is recorded_connect:
            socket.socket.connect = connect
    if refused:
        pytest.fail("test reached for the network beyond loopback: " + "; ".join(refused), pytrace=False)
