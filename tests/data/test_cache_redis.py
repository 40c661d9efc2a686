"""The redis backend of C6 against a real ``redis-server`` that these tests start on a free loopback port.

``make test`` installs redis-server where it is missing (scripts/ensure-redis.sh); without it these
tests fail rather than skip, so a CI that lost it is noticed.
"""
from __future__ import annotations

import datetime as dt
import logging
import pickle
import shutil
import socket
import subprocess
import sys
import time

import dask
import pytest
import redis

import stockdag
from stockdag.domain.data.cache import RedisCache, get_cache
from stockdag.domain.data.prices import BundledPrices
from stockdag.errors import InvalidRequest
from stockdag.pipeline import parse_request_stage
from stockdag.pipeline.request import parse_request

CACHE_LOGGER = "stockdag.domain.data.cache"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """One throw-away ``redis-server`` process: no persistence, loopback only, stoppable mid-test."""

    def __init__(self, directory):
        self.exe = shutil.which("redis-server")
        if self.exe is None:
            pytest.fail("redis-server is not on PATH: run scripts/ensure-redis.sh (make test does)", pytrace=False)
        self.directory = str(directory)
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.directory],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_timeout=0.2, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            assert self.proc.poll() is None, f"redis-server exited with {self.proc.returncode}"
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=1)


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_settings(small, redis_server):
    with dask.config.set({"stockdag.cache.backend": "redis", "stockdag.cache.url": redis_server.url}):
        yield redis_server


def _prices():
    return BundledPrices().fetch("AAPL", dt.date(2012, 6, 1), 250, 100)


def test_request_carries_and_validates_the_url(small):
    with dask.config.set({"stockdag.cache.backend": "redis", "stockdag.cache.url": "redis://127.0.0.1:1/0"}):
        req = parse_request("AAPL", "2012-06-01")
        assert req.cache_url == "redis://127.0.0.1:1/0"
        assert req.settings()["cache"]["url"] == "redis://127.0.0.1:1/0"
        assert parse_request_stage(req) == req  # a worker re-validates to the same request
    with dask.config.set({"stockdag.cache.backend": "redis", "stockdag.cache.url": None}):
        with pytest.raises(InvalidRequest, match="needs stockdag.cache.url"):
            parse_request("AAPL")
    with dask.config.set({"stockdag.cache.backend": "redis", "stockdag.cache.url": "http://127.0.0.1:6379"}):
        with pytest.raises(InvalidRequest, match="malformed cache URL"):
            parse_request("AAPL")


def test_pipeline_misses_then_hits(redis_settings):
    first = stockdag.predict("MSFT", "2012-03-01").to_dict()
    second = stockdag.predict("msft", "2012-03-01").to_dict()
    assert first["cache"] == {"prices": "miss", "news": "miss"}
    assert second["cache"] == {"prices": "hit", "news": "hit"}
    assert first["prediction"] == second["prediction"]
    keys = sorted(k.decode() for k in redis_settings.client().keys("*"))
    assert keys == ["stockdag:news|bundled|MSFT|2012-03-01|320", "stockdag:prices|bundled|MSFT|2012-03-01|200"]


def test_shared_between_processes(redis_settings):
    url = redis_settings.url
    RedisCache(url).set("k", _prices())
    code = (
        "from stockdag.domain.data.cache import RedisCache; "
        f"c = RedisCache({url!r}); v = c.get('k'); print(len(v.frame), v.symbol); c.set('back', 7)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["250", "AAPL"]
    assert RedisCache(url).get("back") == 7


def test_distributed_workers_fill_the_cache_this_process_reads(redis_settings, client):
    # the workers are other processes: what they cached is a hit here
    dist = stockdag.predict("IBM", "2012-03-01", mode="distributed", client=client).to_dict()
    here = stockdag.predict("IBM", "2012-03-01").to_dict()
    assert dist["cache"] == {"prices": "miss", "news": "miss"}
    assert here["cache"] == {"prices": "hit", "news": "hit"}
    assert here["prediction"] == dist["prediction"]


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_entry_is_a_miss_and_dropped(redis_settings, caplog, damage):
    url, server = redis_settings.url, redis_settings.client()
    cache = RedisCache(url)
    good = pickle.dumps(_prices(), protocol=pickle.HIGHEST_PROTOCOL)
    server.set("stockdag:k", good[: len(good) // 2] if damage == "truncate" else b"\x00not a pickle\xff" * 10)
    with caplog.at_level(logging.WARNING, logger=CACHE_LOGGER):
        assert cache.get("k") is None
    assert "dropping unreadable cache entry k" in caplog.text
    assert server.exists("stockdag:k") == 0
    cache.set("k", 42)
    assert cache.get("k") == 42


def test_corrupt_entry_through_the_pipeline(redis_settings):
    stockdag.predict("MSFT", "2012-03-01")
    redis_settings.client().set("stockdag:prices|bundled|MSFT|2012-03-01|200", b"garbage")
    again = stockdag.predict("MSFT", "2012-03-01").to_dict()
    assert again["cache"] == {"prices": "miss", "news": "hit"}
    assert stockdag.predict("MSFT", "2012-03-01").to_dict()["cache"] == {"prices": "hit", "news": "hit"}


def test_outage_degrades_to_fetching_with_a_warning(redis_settings, caplog):
    first = stockdag.predict("MSFT", "2012-03-01").to_dict()
    redis_settings.stop()
    with caplog.at_level(logging.WARNING, logger=CACHE_LOGGER):
        during = stockdag.predict("MSFT", "2012-03-01").to_dict()
        other = stockdag.predict("AAPL", "2012-03-01").to_dict()
    assert during["cache"] == {"prices": "miss", "news": "miss"}
    assert other["cache"] == {"prices": "miss", "news": "miss"}
    assert during["prediction"] == first["prediction"]
    warnings = [r for r in caplog.records if r.name == CACHE_LOGGER and r.levelno == logging.WARNING]
    # one warning for the outage, not one per call; it names the server but never a password
    assert len(warnings) == 1
    assert f"redis cache at 127.0.0.1:{redis_settings.port}/0 unavailable" in warnings[0].getMessage()


def test_recovers_after_the_outage(redis_server, caplog):
    cache = RedisCache(redis_server.url, retry_after=0.2)
    cache.set("k", 1)
    redis_server.stop()
    with caplog.at_level(logging.WARNING, logger=CACHE_LOGGER):
        assert cache.get("k") is None
        cache.set("k", 2)  # skipped while the server is down
        redis_server.start()  # a fresh, empty server on the same port
        time.sleep(0.3)
        cache.set("k", 3)
        assert cache.get("k") == 3
    assert "unavailable" in caplog.text and "reachable again" in caplog.text


def test_a_server_that_never_answers_times_out_quickly(caplog):
    # a listening socket nobody accepts from: the connect succeeds, the reply never comes
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"redis://:s3cret@127.0.0.1:{silent.getsockname()[1]}/0"
        cache = RedisCache(url, socket_timeout=0.2)
        with caplog.at_level(logging.WARNING, logger=CACHE_LOGGER):
            assert cache.get("k") is None
            cache.set("k", 1)
        cache.close()
    assert "unavailable" in caplog.text and "Timeout" in caplog.text
    assert "s3cret" not in caplog.text


def test_get_cache_needs_a_url_and_clear_spares_other_keys(redis_server):
    with pytest.raises(ValueError, match="needs a URL"):
        get_cache("redis")
    cache = get_cache("redis", url=redis_server.url)
    assert get_cache("redis", url=redis_server.url) is cache
    other = redis_server.client()
    other.set("not-ours", b"x")
    cache.set("k", 1)
    cache.clear()
    assert cache.get("k") is None
    assert other.get("not-ours") == b"x"


class Planted:
    """A crafted pickle: unpickling it writes a file (what an attacker's payload would do instead)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_planted_pickle_is_a_miss_with_one_warning_and_never_runs(redis_settings, caplog, tmp_path):
    marker = tmp_path / "payload-ran"
    cache = RedisCache(redis_settings.url)
    redis_settings.client().set("stockdag:k", pickle.dumps(Planted(str(marker))))
    with caplog.at_level(logging.WARNING, logger=CACHE_LOGGER):
        assert cache.get("k") is None
        assert cache.get("k") is None  # dropped: the second look-up is a plain miss
    assert not marker.exists()
    [warning] = [r.getMessage() for r in caplog.records]
    assert warning.startswith("dropping unreadable cache entry k")
    assert redis_settings.client().exists("stockdag:k") == 0


def test_values_are_stored_as_data_not_pickles(redis_settings):
    from stockdag.domain.data.codec import MAGIC

    cache = RedisCache(redis_settings.url)
    cache.set("k", _prices())
    assert redis_settings.client().get("stockdag:k").startswith(MAGIC)
    back = cache.get("k")
    assert back.symbol == "AAPL" and len(back.frame) == 250
