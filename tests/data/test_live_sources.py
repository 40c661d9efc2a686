"""The live Yahoo Finance sources against recorded Yahoo answers (no network).

``responses`` replays the answers at requests' transport, so each source gets a
plain ``requests.Session`` (yfinance's default curl_cffi session would bypass
it). The JSON bodies in ``recorded/`` follow what Yahoo's endpoints return.
"""
from __future__ import annotations

import datetime as dt
import json
import pathlib
import re
import time
from urllib.parse import parse_qs, urlsplit

import pandas as pd
import pytest
import requests
import responses
import yfinance as yf
from responses import matchers
from yfinance import base as yf_base
from yfinance import cache as yf_cache
from yfinance import data as yf_data

from stockdag.domain.data.live import YFinanceNews, YFinancePrices
from stockdag.domain.data.news import get_news_source
from stockdag.domain.data.prices import COLUMNS, get_price_source
from stockdag.errors import DataSourceError, UnknownSymbol

RECORDED = pathlib.Path(__file__).parent / "recorded"
NY = "America/New_York"
AS_OF = dt.date(2024, 1, 8)

CHART = "https://query2.finance.yahoo.com/v8/finance/chart/{}"
QUOTE_SUMMARY = "https://query2.finance.yahoo.com/v10/finance/quoteSummary/{}"
NEWS = "https://finance.yahoo.com/xhr/ncp"
ANY_YAHOO = re.compile(r"https://([a-z0-9-]+\.)*yahoo\.com/.*")
# fc.yahoo.com answers 404 but sets the A3 cookie that the crumb is tied to
COOKIE = (
    "A3=d=AQABBKgYn2UCEGcvNbdmB0ePX9bYyb0LmFoFEgEBAQFqoGWpZdxH0iMA_eMAAA&S=AQAAAqq4V1OQSbtXn0JZ1QHXKjk; "
    "Max-Age=31557600; Domain=.yahoo.com; Path=/; SameSite=None; Secure; HttpOnly"
)
CRUMB = "Qk1Vb5V2qX4"


def recorded(name: str) -> dict:
    return json.loads((RECORDED / name).read_text())


def epoch(day: str) -> str:
    return str(int(pd.Timestamp(day, tz=NY).timestamp()))


@pytest.fixture(autouse=True)
def fresh_yfinance(tmp_path, monkeypatch):
    """A yfinance with no state from other tests or from ~/.cache/py-yfinance.

    Its session/cookie/crumb singleton, response cache, timezone and cookie
    databases and the counter of timezone fallbacks all live per process.
    """
    monkeypatch.delitem(yf_data.SingletonMeta._instances, yf_data.YfData, raising=False)
    monkeypatch.setattr(yf_base, "_tz_info_fetch_ctr", 0)
    managers = (yf_cache._TzDBManager, yf_cache._CookieDBManager, yf_cache._ISINDBManager)
    for manager in managers:
        monkeypatch.setattr(manager, "_db", None)
        monkeypatch.setattr(manager, "_cache_dir", manager._cache_dir)  # so it is restored
    monkeypatch.setattr(yf_cache._TzCacheManager, "_tz_cache", None)
    monkeypatch.setattr(yf_cache._CookieCacheManager, "_Cookie_cache", None)
    monkeypatch.setattr(yf_cache._ISINCacheManager, "_isin_cache", None)
    yf.set_tz_cache_location(str(tmp_path / "py-yfinance"))
    yf_data.YfData.cache_get.cache_clear()
    yield tmp_path / "py-yfinance"
    for manager in managers:
        manager.close_db()
    yf_data.YfData.cache_get.cache_clear()


@pytest.fixture
def yahoo():
    """Recorded Yahoo: the cookie and crumb endpoints; tests add the data endpoints."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.get("https://fc.yahoo.com/", status=404, body="<html><body>404 Not Found</body></html>",
                 content_type="text/html", headers={"Set-Cookie": COOKIE})
        for host in ("query1", "query2"):
            rsps.get(f"https://{host}.finance.yahoo.com/v1/test/getcrumb", body=CRUMB, content_type="text/plain")
        yield rsps


def serve_chart(rsps, symbol: str, body: dict, status: int = 200) -> None:
    # the timezone probe (range=1d) and the history request share one URL
    rsps.get(CHART.format(symbol), json=recorded("chart_AAPL_range_1d.json"),
             match=[matchers.query_param_matcher({"range": "1d", "interval": "1d"}, strict_match=False)])
    rsps.get(CHART.format(symbol), json=body, status=status,
             match=[matchers.query_param_matcher({"interval": "1d", "events": "div,splits,capitalGains"},
                                                 strict_match=False)])


def serve_news(rsps, body: dict) -> None:
    rsps.post(NEWS, json=body, match=[
        matchers.query_param_matcher({"queryRef": "latestNews", "serviceKey": "ncp_fin"}, strict_match=False),
        matchers.json_params_matcher({"serviceConfig": {"snippetCount": 20, "s": ["AAPL"]}}),
    ])


def test_sources_are_registered_and_open_ended():
    prices = get_price_source("yfinance", timeout=3)
    news = get_news_source("yfinance", timeout=3)
    assert isinstance(prices, YFinancePrices) and isinstance(news, YFinanceNews)
    assert (prices.name, news.name) == ("yfinance", "yfinance")
    assert (prices.timeout, news.timeout) == (3.0, 3.0)
    assert prices.symbols() == []


def test_history_returns_the_recorded_bars_up_to_as_of(yahoo):
    body = recorded("chart_AAPL_1d_history.json")
    serve_chart(yahoo, "AAPL", body)

    frame = YFinancePrices(session=requests.Session()).history("AAPL", AS_OF, history_days=5)

    result = body["chart"]["result"][0]
    quote, adj = result["indicators"]["quote"][0], result["indicators"]["adjclose"][0]["adjclose"]
    days = pd.to_datetime(result["timestamp"], unit="s", utc=True).tz_convert(NY).tz_localize(None).normalize()
    kept = days <= pd.Timestamp(AS_OF)  # the recording runs to 2024-01-10, past as_of
    expected = pd.DataFrame(
        {"open": quote["open"], "high": quote["high"], "low": quote["low"], "close": quote["close"],
         "volume": quote["volume"], "adj_close": adj},
        index=pd.DatetimeIndex(days, name="date"),
    )[kept]
    assert list(frame.columns) == COLUMNS
    assert frame.index.name == "date"
    assert frame.index[-1] == pd.Timestamp("2024-01-08")
    pd.testing.assert_frame_equal(frame, expected, check_dtype=False, check_freq=False,
                                  check_exact=True, check_index_type=False)
    assert frame.loc["2024-01-03", "close"] == 184.25
    assert frame.loc["2024-01-03", "adj_close"] == 183.17864990234375

    (history_call,) = [c for c in yahoo.calls if "period1" in c.request.url]
    window = parse_qs(urlsplit(history_call.request.url).query)
    assert window["period1"] == [epoch("2023-12-21")]  # 5 * 1.5 + 10 -> 18 days before as_of
    assert window["period2"] == [epoch("2024-01-09")]  # as_of inclusive
    assert window["crumb"] == [CRUMB]
    # yfinance asks 30 s for its cookie and crumb; the source caps every request
    assert all(0 < c.request.req_kwargs["timeout"] <= 10 for c in yahoo.calls)


def test_fetch_validates_and_keeps_the_last_history_days(yahoo):
    serve_chart(yahoo, "AAPL", recorded("chart_AAPL_1d_history.json"))

    data = YFinancePrices(session=requests.Session()).fetch("AAPL", AS_OF, history_days=5, min_history=3)

    assert (data.symbol, data.source, data.as_of) == ("AAPL", "yfinance", AS_OF)
    assert list(data.frame.index.strftime("%Y-%m-%d")) == [
        "2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-08"]
    assert data.frame["close"].tolist() == [185.63999938964844, 184.25, 181.91000366210938,
                                            181.17999267578125, 185.55999755859375]
    assert data.frame["adj_close"].tolist() == [184.56056213378906, 183.17864990234375, 180.85220336914062,
                                                180.12644958496094, 184.48104858398438]


def test_an_empty_chart_is_a_data_source_error(yahoo):
    serve_chart(yahoo, "AAPL", recorded("chart_AAPL_no_bars.json"))

    with pytest.raises(DataSourceError) as raised:
        YFinancePrices(session=requests.Session()).history("AAPL", AS_OF, history_days=5)

    assert str(raised.value) == (
        "no AAPL prices 2023-12-21..2024-01-08 from Yahoo Finance: empty answer; "
        "the symbol may not exist or the source is unreachable"
    )


def test_a_connection_error_is_a_data_source_error(yahoo):
    down = requests.exceptions.ConnectionError(
        "HTTPSConnectionPool(host='query2.finance.yahoo.com', port=443): Max retries exceeded with url: "
        "/v8/finance/chart/AAPL (Caused by NameResolutionError(\"<urllib3.connection.HTTPSConnection object>: "
        "Failed to resolve 'query2.finance.yahoo.com' ([Errno -3] Temporary failure in name resolution)\"))"
    )
    yahoo.reset()
    for method in ("GET", "POST"):
        yahoo.add(method, ANY_YAHOO, body=down)

    with pytest.raises(DataSourceError) as raised:
        YFinancePrices(session=requests.Session()).history("AAPL", AS_OF, history_days=5)

    message = str(raised.value)
    assert type(raised.value) is DataSourceError
    assert re.fullmatch(
        r"no AAPL prices 2023-12-21\.\.2024-01-08 from Yahoo Finance: ConnectionError from "
        r"query2\.finance\.yahoo\.com: HTTPSConnectionPool.*\.\.\.; the source is unreachable",
        message,
    ), message
    assert "\n" not in message


def test_a_404_chart_is_an_unknown_symbol_every_time(yahoo):
    yahoo.get(CHART.format("ZZZZZ"), status=404, json=recorded("chart_not_found.json"))
    yahoo.get(QUOTE_SUMMARY.format("ZZZZZ"), status=404, json=recorded("quote_summary_not_found.json"))
    source = YFinancePrices(session=requests.Session())

    for _ in range(2):  # yfinance caches answers per process; the second call must not hit that cache
        with pytest.raises(UnknownSymbol) as raised:
            source.history("ZZZZZ", AS_OF, history_days=5)
        assert type(raised.value) is UnknownSymbol
        assert raised.value.symbol == "ZZZZZ"
        assert str(raised.value) == "unknown symbol 'ZZZZZ'"


def test_a_timeout_is_a_data_source_error(yahoo):
    yahoo.reset()
    yahoo.get(ANY_YAHOO, body=requests.exceptions.ConnectTimeout(
        "HTTPSConnectionPool(host='query2.finance.yahoo.com', port=443): "
        "Max retries exceeded (connect timeout=10)"))

    with pytest.raises(DataSourceError) as raised:
        YFinancePrices(session=requests.Session()).history("AAPL", AS_OF, history_days=5)

    assert re.fullmatch(
        r"no AAPL prices 2023-12-21\.\.2024-01-08 from Yahoo Finance: no answer within 10s "
        r"\(ConnectTimeout from [a-z0-9.]+yahoo\.com: .*\); the source is unreachable or too slow",
        str(raised.value),
    ), str(raised.value)


def test_one_fetch_stays_within_its_timeout_budget(yahoo):
    yahoo.reset()

    def slow_cookie(request):
        time.sleep(0.3)  # longer than the whole budget
        return 404, {"Set-Cookie": COOKIE}, ""

    yahoo.add_callback("GET", "https://fc.yahoo.com/", callback=slow_cookie)
    serve_chart(yahoo, "AAPL", recorded("chart_AAPL_1d_history.json"))

    with pytest.raises(DataSourceError) as raised:
        YFinancePrices(timeout=0.2, session=requests.Session()).history("AAPL", AS_OF, history_days=5)

    # every later request (crumb, timezone, chart, quote) failed before reaching the wire
    assert [c.request.url for c in yahoo.calls] == ["https://fc.yahoo.com/"]
    assert yahoo.calls[0].request.req_kwargs["timeout"] <= 0.2
    assert str(raised.value) == (
        "no AAPL prices 2023-12-21..2024-01-08 from Yahoo Finance: no answer within 0.2s "
        "(TimeoutError from query2.finance.yahoo.com: the 0.2s budget of this fetch is spent); "
        "the source is unreachable or too slow"
    )


def test_headlines_are_dated_titles_within_the_window(yahoo):
    serve_news(yahoo, recorded("news_AAPL.json"))

    frame = YFinanceNews(session=requests.Session()).headlines("AAPL", dt.date(2024, 1, 5), AS_OF)

    expected = pd.DataFrame({
        "date": pd.to_datetime(["2024-01-08", "2024-01-07"]).astype("datetime64[ns]"),
        "headline": pd.Series(["Apple shares bounce back after two-day slide",
                               "What to watch for Apple this week"], dtype=str),
    })
    pd.testing.assert_frame_equal(frame, expected)


def test_news_fetch_sorts_by_date_and_looks_back_news_days(yahoo):
    serve_news(yahoo, recorded("news_AAPL.json"))

    news = YFinanceNews(session=requests.Session()).fetch("AAPL", AS_OF, news_days=7)

    assert (news.symbol, news.source) == ("AAPL", "yfinance")
    assert list(news.frame["date"].dt.strftime("%Y-%m-%d")) == ["2024-01-03", "2024-01-07", "2024-01-08"]
    assert news.frame["headline"].iloc[0] == "Apple slips after analyst downgrade"


def test_no_news_is_an_empty_frame(yahoo):
    serve_news(yahoo, recorded("news_empty.json"))

    frame = YFinanceNews(session=requests.Session()).headlines("AAPL", None, None)

    assert list(frame.columns) == ["date", "headline"]
    assert frame.empty
    assert frame["date"].dtype == "datetime64[ns]"


def test_unreachable_news_is_a_data_source_error(yahoo):
    yahoo.reset()
    for method in ("GET", "POST"):
        yahoo.add(method, ANY_YAHOO, body=requests.exceptions.ConnectionError("[Errno 101] Network is unreachable"))

    with pytest.raises(DataSourceError) as raised:
        YFinanceNews(session=requests.Session()).headlines("AAPL", None, AS_OF)

    assert str(raised.value) == (
        "no AAPL news from Yahoo Finance: ConnectionError from finance.yahoo.com: "
        "[Errno 101] Network is unreachable; the source is unreachable"
    )


def test_a_failed_news_answer_is_a_data_source_error(yahoo):
    yahoo.post(NEWS, status=500, body="<html><body>Will be back soon</body></html>", content_type="text/html")

    with pytest.raises(DataSourceError) as raised:
        YFinanceNews(session=requests.Session()).headlines("AAPL", None, AS_OF)

    assert str(raised.value) == (
        "no AAPL news from Yahoo Finance: HTTP 500; the symbol may not exist or the source is unreachable"
    )
