"""Errors reach HTTP clients without the server's file paths; the server log keeps them (issue 24 item 8)."""
import logging

import dask
import httpx
import pytest

from stockdag.serve import ServerThread, create_app
from stockdag.serve.app import _without_paths


def test_a_model_store_error_names_no_path_to_the_client(small, tmp_path, caplog):
    store = str(tmp_path / "none")
    with dask.config.set({"stockdag.profile": "pretrained", "stockdag.models.store": store}):
        app = create_app("centralized")
        with caplog.at_level(logging.WARNING, logger="stockdag.serve.app"), ServerThread(app) as server:
            r = httpx.get(f"{server.url}/predict/AAPL", params={"as_of": "2012-06-01"}, timeout=60)
    body = r.json()
    assert r.status_code == 503 and body["error"] == "ModelStoreError"
    assert str(tmp_path) not in r.text and "pytest" not in r.text
    assert "in <path>" in body["detail"] and "stockdag train" in body["detail"]
    assert any(store in rec.getMessage() for rec in caplog.records)  # the operator still sees where


@pytest.mark.parametrize("message, folders, expected", [
    ("cannot read /home/u/prices/IBM.csv: [Errno 13] Permission denied: '/home/u/prices/IBM.csv'", (),
     "cannot read <path>: [Errno 13] Permission denied: '<path>'"),
    ("price data folder 'prices' does not exist", ("prices",), "price data folder '<path>' does not exist"),
    ("cannot read prices/IBM.csv: no date column", ("prices",), "cannot read <path>: no date column"),
    ("no pretrained models for IBM in ~/.cache/stockdag/models; run `stockdag train` first", (),
     "no pretrained models for IBM in <path>; run `stockdag train` first"),
    (r"cannot load C:\Users\u\models\IBM\ridge.joblib: EOF", (), "cannot load <path>: EOF"),
    # what is not a file path stays: an endpoint, a URL, a date
    ("as-of date 2012-06-01 is before IBM's first answerable date (see /symbols)", ("prices",),
     "as-of date 2012-06-01 is before IBM's first answerable date (see /symbols)"),
    ("scheduler tcp://127.0.0.1:8786 and http://127.0.0.1:8787/status unreachable", (),
     "scheduler tcp://127.0.0.1:8786 and http://127.0.0.1:8787/status unreachable"),
])
def test_paths_are_replaced_and_nothing_else(message, folders, expected):
    assert _without_paths(message, folders) == expected
