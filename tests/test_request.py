import dataclasses
import datetime as dt

import pytest

from stockdag.errors import InvalidRequest
from stockdag.pipeline import parse_request_stage
from stockdag.pipeline.request import normalise_symbol, parse_date, parse_request


@pytest.mark.parametrize("raw, expected", [("aapl", "AAPL"), (" msft ", "MSFT"), ("BRK.B", "BRK.B"), ("^GSPC", None)])
def test_normalise_symbol(raw, expected):
    if expected is None:
        with pytest.raises(InvalidRequest, match="malformed symbol"):
            normalise_symbol(raw)
    else:
        assert normalise_symbol(raw) == expected


@pytest.mark.parametrize("bad", ["", "../etc/passwd", "A B", "AAPL;rm", "x" * 20, "1ABC", 42, None])
def test_malformed_symbols_are_rejected(bad):
    with pytest.raises(InvalidRequest):
        parse_request(bad)


@pytest.mark.parametrize("bad", ["2012-13-01", "yesterday", "2012/01/01", 20120101])
def test_malformed_dates_are_rejected(bad):
    with pytest.raises(InvalidRequest, match="as-of date"):
        parse_request("AAPL", bad)


def test_dates_parse():
    assert parse_date("2012-06-01") == dt.date(2012, 6, 1)
    assert parse_date(dt.datetime(2012, 6, 1, 15, 0)) == dt.date(2012, 6, 1)
    assert parse_date(None) is None


def test_unknown_profile_and_source():
    with pytest.raises(InvalidRequest, match="profile"):
        parse_request("AAPL", profile="fast")
    with pytest.raises(InvalidRequest, match="source"):
        parse_request("AAPL", source="bloomberg")
    with pytest.raises(InvalidRequest, match="data directory"):
        parse_request("AAPL", source="csv")


def test_request_ids_are_unique_and_c1_round_trips(small):
    a, b = parse_request("AAPL", "2012-06-01"), parse_request("AAPL", "2012-06-01")
    assert a.request_id != b.request_id
    assert a.window == small["stockdag.models.window"]
    # C1 on a worker re-validates from the request's own fields and gets the same request
    assert parse_request_stage(a) == a


def test_malformed_symbol_touches_no_cache_or_source(monkeypatch):
    import stockdag.domain.data.cache as cache
    import stockdag.pipeline.stages as pipeline

    def boom(*a, **k):
        raise AssertionError("I/O attempted for a malformed request")

    monkeypatch.setattr(cache, "get_cache", boom)
    monkeypatch.setattr(pipeline, "get_cache", boom)
    monkeypatch.setattr(pipeline, "get_price_source", boom)
    monkeypatch.setattr(pipeline, "get_news_source", boom)
    import stockdag

    with pytest.raises(InvalidRequest):
        stockdag.predict("../../AAPL")


@pytest.mark.parametrize("as_of", ["0001-01-01", "0002-01-01", "0003-12-31", "1677-01-01", "9999-12-31"])
def test_dates_no_data_can_cover_are_one_line_422s_in_every_stage(as_of):
    # C5's news window starts news_days before the as-of date: in years 1-3 that date does not exist
    # (OverflowError); C1 rejects such dates, so no stage, in any executor order, meets them
    from stockdag.errors import InsufficientHistory
    from stockdag.pipeline import run_stages

    with pytest.raises(InsufficientHistory) as info:
        parse_request("AAPL", as_of)
    assert info.value.http_status == 422 and "\n" not in info.value.message and as_of in info.value.message
    ok = parse_request("AAPL", "2012-06-01")
    with pytest.raises(InsufficientHistory):  # a request built without C1 is re-validated by the graph's C1
        run_stages(dataclasses.replace(ok, as_of=dt.date.fromisoformat(as_of)))
