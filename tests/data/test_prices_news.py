import datetime as dt
import os

import pandas as pd
import pytest

from stockdag.domain.data.news import BUNDLED_NEWS, BundledNews, CsvNews
from stockdag.domain.data.prices import BundledPrices, CsvPrices, get_price_source
from stockdag.errors import DataSourceError, InsufficientHistory, UnknownSymbol


def test_bundled_symbols_and_ranges():
    src = BundledPrices()
    assert {"AAPL", "GOOG", "IBM", "MSFT"} <= set(src.symbols())
    aapl = src.history("AAPL", None, 0)
    assert aapl.index[0] == pd.Timestamp("2000-03-01") and aapl.index[-1] == pd.Timestamp("2013-03-01")
    goog = src.history("GOOG", None, 0)
    assert goog.index[0] == pd.Timestamp("2004-08-19")


def test_fetch_uses_history_up_to_as_of_and_keeps_adjusted_close():
    data = BundledPrices().fetch("AAPL", dt.date(2012, 6, 2), history_days=250, min_history=100)  # a Saturday
    assert data.as_of == dt.date(2012, 6, 1)  # last trading day on or before as_of
    assert len(data.frame) == 250 and data.frame.index.is_monotonic_increasing
    assert data.frame.index[-1] == pd.Timestamp("2012-06-01")
    # AAPL split 7:1 in 2014: the adjusted close is far below the raw close in 2012
    assert (data.frame["adj_close"] < data.frame["close"] / 5).all()


def test_out_of_range_and_short_history():
    src = BundledPrices()
    with pytest.raises(InsufficientHistory, match="after the last"):
        src.fetch("AAPL", dt.date(2020, 1, 1), 600, 300)
    with pytest.raises(InsufficientHistory, match="before the first"):
        src.fetch("AAPL", dt.date(1999, 1, 1), 600, 300)
    with pytest.raises(InsufficientHistory, match="at least 300"):
        src.fetch("FB", None, 600, 300)


def test_unknown_symbol_lists_available():
    with pytest.raises(UnknownSymbol) as info:
        BundledPrices().fetch("ZZZZ", None, 600, 300)
    assert "AAPL" in str(info.value) and "AAPL" in info.value.available


def test_csv_source(tmp_path):
    frame = BundledPrices().history("IBM", None, 0).reset_index()
    frame.columns = ["Date", "Open", "High", "Low", "Close", "Volume", "Adj Close"]
    frame.to_csv(tmp_path / "IBM.csv", index=False)
    src = get_price_source("csv", str(tmp_path))
    assert src.symbols() == ["IBM"]
    a = src.fetch("IBM", dt.date(2012, 6, 1), 300, 200)
    b = BundledPrices().fetch("IBM", dt.date(2012, 6, 1), 300, 200)
    pd.testing.assert_frame_equal(a.frame, b.frame)
    with pytest.raises(UnknownSymbol):
        src.fetch("AAPL", None, 300, 200)
    with pytest.raises(DataSourceError, match="does not exist"):
        CsvPrices(str(tmp_path / "missing"))
    (tmp_path / "BAD.csv").write_text("when,price\nx,1\n")
    with pytest.raises(DataSourceError, match="no date column"):
        src.fetch("BAD", None, 300, 200)


def test_bundled_news_is_the_seeded_generator_output(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_news", os.path.join(os.path.dirname(__file__), "..", "..", "scripts", "make_news.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "news.csv.gz"
    mod.main(str(out))
    pd.testing.assert_frame_equal(pd.read_csv(out), pd.read_csv(BUNDLED_NEWS))


def test_news_window_and_csv_news(tmp_path):
    news = BundledNews().fetch("AAPL", dt.date(2012, 6, 1), news_days=30)
    assert news.frame["date"].max() <= pd.Timestamp("2012-06-01")
    assert news.frame["date"].min() >= pd.Timestamp("2012-05-02")
    assert len(news.frame) > 10
    empty = CsvNews(str(tmp_path)).fetch("AAPL", dt.date(2012, 6, 1), 30)
    assert empty.frame.empty and list(empty.frame.columns) == ["date", "headline"]


def _write_prices(path, symbol="IBM"):
    frame = BundledPrices().history(symbol, None, 0).reset_index()
    frame.to_csv(path, index=False)


def test_csv_symbols_are_price_files_only_and_each_listed_symbol_opens(tmp_path):
    _write_prices(tmp_path / "ibm.csv")            # lower-case file name
    _write_prices(tmp_path / "BRK.B.csv")          # a dotted ticker is a symbol
    (tmp_path / "AAPL.news.csv").write_text("date,headline\n2012-05-01,x\n")  # news beside prices: not a symbol
    (tmp_path / "aapl.NEWS.csv").write_text("date,headline\n2012-05-01,x\n")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "bad name.csv").write_text("x")    # cannot be a symbol: not listed
    src = CsvPrices(str(tmp_path))
    assert src.symbols() == ["BRK.B", "IBM"]
    for symbol in src.symbols():
        assert len(src.fetch(symbol, dt.date(2012, 6, 1), 300, 200).frame) == 300


def test_csv_news_file_name_case_does_not_matter(tmp_path):
    (tmp_path / "aapl.news.csv").write_text("date,headline\n2012-05-30,Apple up\n")
    news = CsvNews(str(tmp_path)).fetch("AAPL", dt.date(2012, 6, 1), 30)
    assert news.frame["headline"].tolist() == ["Apple up"]
