import datetime as dt
import glob
import os
import subprocess
import sys

import pandas as pd
import pytest

from stockdag.domain.data.cache import DiskCache, LRUCache, cache_key, get_cache
from stockdag.domain.data.prices import BundledPrices
from stockdag.pipeline.request import parse_request


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
        "import sys; from stockdag.domain.data.cache import DiskCache; "
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


class Planted:
    """A crafted pickle: unpickling it writes a file (what an attacker's payload would do instead)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_shared_cache_values_round_trip_as_data(tmp_path):
    from stockdag.domain.data.codec import decode, encode
    from stockdag.domain.data.news import BundledNews

    prices = BundledPrices().fetch("AAPL", dt.date(2012, 6, 1), 250, 100)
    news = BundledNews().fetch("AAPL", dt.date(2012, 6, 1), 30)
    for value in (prices, news):
        back = decode(encode(value))
        assert type(back) is type(value)
        pd.testing.assert_frame_equal(back.frame, value.frame)
        assert {k: v for k, v in back.__dict__.items() if k != "frame"} == \
            {k: v for k, v in value.__dict__.items() if k != "frame"}
    assert decode(encode({"a": [1, 2]})) == {"a": [1, 2]}


@pytest.mark.parametrize("how", ["pickled value", "pickle bytes"])
def test_a_planted_pickle_in_the_disk_cache_is_a_miss_with_one_warning(tmp_path, caplog, how):
    import logging
    import pickle

    import diskcache

    marker = tmp_path / "payload-ran"
    cache = DiskCache(str(tmp_path / "c"))
    planter = diskcache.Cache(str(tmp_path / "c"), disk_min_file_size=0)  # what another writer could do
    planter.set("k", Planted(str(marker)) if how == "pickled value" else pickle.dumps(Planted(str(marker))))
    planter.close()
    with caplog.at_level(logging.WARNING, logger="stockdag.domain.data.cache"):
        assert cache.get("k") is None
        assert cache.get("k") is None  # dropped: the second look-up is a plain miss
    assert not marker.exists()
    [warning] = [r.getMessage() for r in caplog.records]
    assert warning.startswith("dropping unreadable cache entry k")


def test_the_default_disk_folder_is_private_to_the_user(tmp_path, monkeypatch):
    import stat

    from stockdag.domain.data import cache as cache_mod

    monkeypatch.setattr(cache_mod.tempfile, "gettempdir", lambda: str(tmp_path))
    c = DiskCache()
    assert c.directory == str(tmp_path / f"stockdag-cache-{os.getuid()}")
    assert stat.S_IMODE(os.stat(c.directory).st_mode) == 0o700
    c.close()


def test_a_disk_folder_another_user_owns_or_a_symlink_is_refused(tmp_path, monkeypatch):
    from stockdag.domain.data import cache as cache_mod

    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "link")
    with pytest.raises(PermissionError, match="not a folder"):
        DiskCache(str(tmp_path / "link"))
    (tmp_path / "theirs").mkdir()
    real_uid = os.getuid()
    monkeypatch.setattr(cache_mod.os, "getuid", lambda: real_uid + 1)  # as if another user had made it
    with pytest.raises(PermissionError, match="belongs to another user"):
        DiskCache(str(tmp_path / "theirs"))


def test_a_refused_disk_folder_is_one_line_from_the_cli(tmp_path, capsys, small):
    import dask

    from stockdag.cli import main

    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", tmp_path / "link")
    with dask.config.set({"stockdag.cache.backend": "disk", "stockdag.cache.directory": str(tmp_path / "link")}):
        assert main(["predict", "AAPL", "--as-of", "2012-06-01"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a folder" in err[0] and "refusing" in err[0], err
