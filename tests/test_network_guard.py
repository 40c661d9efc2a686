"""The test-wide network guard: loopback works, anything else is refused before it leaves.

The refused targets are 192.0.2.1 (TEST-NET-1, reserved for documentation and
never routed) and the reserved ``.invalid`` domain; each test first checks the
guard is in place, so a broken guard fails the test instead of sending traffic.
"""
from __future__ import annotations

import http.server
import pathlib
import re
import socket
import subprocess
import sys
import threading

import pytest
import pytest_socket
import requests

REFUSED_IP = "192.0.2.1"
# the guard warns too, for code that swallows its error; here the refusals are the point
refusal_expected = pytest.mark.filterwarnings("ignore:A test tried to:UserWarning")


@pytest.fixture
def loopback_server():
    """A local HTTP server on 127.0.0.1 answering every GET with 200 "ok"."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join()


def _connect_is_guarded() -> bool:
    connect = socket.socket.connect
    connect = getattr(connect, "__wrapped__", connect)  # the conftest's recorder
    return (connect.__module__, connect.__name__) == ("pytest_socket", "guarded_connect")


def test_loopback_http_works(loopback_server):
    for host in ("127.0.0.1", "localhost"):
        assert requests.get(f"http://{host}:{loopback_server}/", timeout=5).text == "ok"


def test_curl_cffi_to_loopback_works(loopback_server):
    curl_requests = pytest.importorskip("curl_cffi.requests")
    with curl_requests.Session() as session:
        assert session.get(f"http://127.0.0.1:{loopback_server}/", timeout=5).text == "ok"


def test_a_loopback_dask_cluster_works(client):
    assert client.scheduler.address.startswith("tcp://127.0.0.1:")
    assert client.submit(sum, [1, 2]).result(timeout=30) == 3


@pytest.mark.timeout(10)
@refusal_expected
def test_a_connection_beyond_loopback_is_refused_before_it_leaves(network_guard):
    assert _connect_is_guarded()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        with pytest.raises(pytest_socket.SocketConnectBlockedError, match=REFUSED_IP):
            sock.connect((REFUSED_IP, 80))
    assert len(network_guard) == 1 and REFUSED_IP in network_guard[0]
    network_guard.clear()  # refused on purpose


@pytest.mark.timeout(10)
@refusal_expected
def test_requests_beyond_loopback_are_refused(network_guard):
    assert _connect_is_guarded()
    with pytest.raises(pytest_socket.SocketConnectBlockedError):
        requests.get(f"http://{REFUSED_IP}/", timeout=5)
    network_guard.clear()


@refusal_expected
def test_a_name_lookup_is_refused_before_any_dns_query(network_guard):
    assert socket.getaddrinfo is not pytest_socket._true_getaddrinfo
    with pytest.raises(pytest_socket.SocketBlockedError, match="example.invalid"):
        socket.getaddrinfo("example.invalid", 443)
    assert network_guard == ["resolve 'example.invalid'"]
    network_guard.clear()


@refusal_expected
def test_curl_cffi_beyond_loopback_is_refused(network_guard):
    curl_requests = pytest.importorskip("curl_cffi.requests")
    assert "guarded_request" in curl_requests.Session.request.__qualname__
    with pytest.raises(pytest_socket.SocketBlockedError, match="curl_cffi"):
        curl_requests.Session().get(f"http://{REFUSED_IP}/", timeout=5)
    network_guard.clear()


SWALLOWING_TEST = f'''
import socket


def test_swallows_a_refused_connect():
    connect = socket.socket.connect.__wrapped__
    assert (connect.__module__, connect.__name__) == ("pytest_socket", "guarded_connect")
    try:
        socket.create_connection(("{REFUSED_IP}", 80), timeout=1)
    except Exception:
        pass
'''


def test_a_refusal_fails_the_test_even_when_swallowed(tmp_path):
    for name in ("conftest.py", "xdist_plan.py"):  # the suite's conftest and the module it imports its hooks from
        (tmp_path / name).write_text(pathlib.Path(__file__).with_name(name).read_text())
    (tmp_path / "test_swallow.py").write_text(SWALLOWING_TEST)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:looptime_plugin", "-p", "no:looptime_chronometers", "-p", "no:looptime_timeproxies",
         "--allow-hosts=127.0.0.1,::1,localhost", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "test reached for the network beyond loopback" in run.stdout
    assert f'host "{REFUSED_IP}"' in run.stdout
    assert re.search(r"^1 passed, .*1 error", run.stdout, re.MULTILINE), run.stdout
