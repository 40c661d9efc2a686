import datetime as dt
import glob
import os
import subprocess
import sys

import pytest

from stockdag.data.cache import DiskCache, LRUCache, cache_key, get_cache
from stockdag.data.prices import BundledPrices
from stockdag.request import parse_request


def test_lru_evicts_least_recently_used():
    c = LRUCache(size=2)
    c.set("a", 1)
    c.set("b", 2)
    assert c.get("a") == 1  # touch a: b is now the oldest
    c.set("c", 3)
    assert c.get("b") is None and c.get("a") == 1 and c.get("c") == 3


def test_cache_key_comes_from_validated_fields(small):
    req = parse_request(" aapl ", "2012-06-01")
    assert cache_key("prices", req) == "prices|bundled|AAPL|2012-06-01|200"
    assert cache_key("news", req) == "news|bundled|AAPL|2012-06-01|320"


def test_disk_cache_is_shared_between_processes(tmp_path):
    value = BundledPrices().fetch("AAPL", dt.date(2012, 6, 1), 250, 100)
    DiskCache(str(tmp_path)).set("k", value)
    code = (
        "import sys; from stockdag.data.cache import DiskCache; "
        f"v = DiskCache({str(tmp_path)!r}).get('k'); print(len(v.frame), v.symbol)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["250", "AAPL"]


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_disk_entry_is_a_miss_not_a_crash(tmp_path, damage):
    cache = DiskCache(str(tmp_path))
    cache.set("k", BundledPrices().fetch("AAPL", dt.date(2012, 6, 1), 250, 100))
    files = glob.glob(os.path.join(str(tmp_path), "**", "*.val"), recursive=True)
    assert len(files) == 1
    with open(files[0], "r+b") as f:
        if damage == "truncate":
            f.truncate(os.path.getsize(files[0]) // 2)
        else:
            f.seek(0)
            f.write(b"\x00not a pickle at all\xff" * 10)
    assert cache.get("k") is None
    assert cache.get("k") is None  # dropped, still a miss
    cache.set("k", 42)
    assert cache.get("k") == 42


def test_pipeline_reports_hits_and_misses(small, tmp_path):
    import dask

    import stockdag

    for backend in ("lru", "disk"):
        with dask.config.set({"stockdag.cache.backend": backend, "stockdag.cache.directory": str(tmp_path / backend)}):
            first = stockdag.predict("MSFT", "2012-03-01").to_dict()
            second = stockdag.predict("msft", "2012-03-01").to_dict()
            other = stockdag.predict("MSFT", "2012-03-02").to_dict()
        assert first["cache"] == {"prices": "miss", "news": "miss"}
        assert second["cache"] == {"prices": "hit", "news": "hit"}
        assert other["cache"] == {"prices": "miss", "news": "miss"}
        assert first["prediction"] == second["prediction"]
    with dask.config.set({"stockdag.cache.backend": "none"}):
        assert stockdag.predict("MSFT", "2012-03-01").to_dict()["cache"]["prices"] == "miss"
        assert stockdag.predict("MSFT", "2012-03-01").to_dict()["cache"]["prices"] == "miss"
    assert get_cache("none").get("anything") is None
