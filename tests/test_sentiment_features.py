import datetime as dt

import numpy as np
import pandas as pd
import pytest

from stockdag.domain.data.news import BundledNews, NewsData
from stockdag.domain.data.prices import BundledPrices, PriceData
from stockdag.domain.features import PRICE_FEATURES, make_features
from stockdag.domain.sentiment import polarity, score_sentiment


@pytest.mark.parametrize("text, score", [
    ("Apple shares rally as investors cheer strong demand", 0.8074),
    ("IBM faces lawsuit and regulatory concerns", -0.2263),
    ("Microsoft to hold annual shareholder meeting", 0.0),
    # the examples and scores published in VADER's README
    ("VADER is smart, handsome, and funny.", 0.8316),
    ("VADER is not smart, handsome, nor funny.", -0.7424),
    ("The book was kind of good.", 0.3832),
])
def test_vader_scores_offline(text, score):
    assert polarity(text) == pytest.approx(score, abs=1e-4)


def test_sentiment_is_averaged_per_day():
    frame = pd.DataFrame({
        "date": pd.to_datetime(["2012-01-03", "2012-01-03", "2012-01-04"]),
        "headline": ["Apple shares rally as investors cheer strong demand", "IBM faces lawsuit and regulatory concerns", "Microsoft to hold annual shareholder meeting"],
    })
    s = score_sentiment(NewsData("X", "test", frame))
    assert s.headlines == 3
    assert s.daily.loc["2012-01-03", "sent_mean"] == pytest.approx((0.8074 - 0.2263) / 2, abs=1e-4)
    assert s.daily.loc["2012-01-03", "sent_count"] == 2
    assert s.summary()["latest"] == 0.0


def test_empty_news_is_neutral():
    empty = pd.DataFrame({"date": pd.Series(dtype="datetime64[ns]"), "headline": pd.Series(dtype=str)})
    s = score_sentiment(NewsData("X", "test", empty))
    assert s.headlines == 0 and s.daily.empty and s.summary()["latest"] == 0.0


def test_features_at_t_use_only_data_up_to_t():
    full = BundledPrices().fetch("AAPL", dt.date(2012, 12, 31), 600, 300)
    f_full = make_features(full).frame
    for t in ["2012-03-01", "2012-07-16", "2012-12-28"]:
        truncated = PriceData("AAPL", "bundled", pd.Timestamp(t).date(), full.frame.loc[:t])
        f_trunc = make_features(truncated).frame
        # every feature of day t is the same whether or not the future is in the frame
        pd.testing.assert_series_equal(f_full.loc[t, PRICE_FEATURES], f_trunc.loc[t, PRICE_FEATURES], check_names=False)
        # and the as-of row's target (the unknown next-day return) is NaN, never filled
        assert np.isnan(f_trunc["target"].iloc[-1])


def test_target_is_the_next_day_return():
    data = BundledPrices().fetch("IBM", dt.date(2012, 6, 1), 300, 100)
    f = make_features(data).frame
    adj = data.frame["adj_close"]
    day, nxt = f.index[-10], adj.index[adj.index.get_loc(f.index[-10]) + 1]
    assert f.loc[day, "target"] == pytest.approx(adj[nxt] / adj[day] - 1)
    assert not f[PRICE_FEATURES].isna().any().any()


def test_bundled_headlines_reflect_the_same_day_only():
    # the synthetic news must not encode tomorrow's move (that would be look-ahead)
    news = BundledNews().fetch("AAPL", dt.date(2012, 12, 31), 4000)
    daily = score_sentiment(news).daily["sent_mean"]
    adj = BundledPrices().history("AAPL", None, 0)["adj_close"]
    ret = adj.pct_change()
    joined = pd.DataFrame({"s": daily, "same": ret, "next": ret.shift(-1)}).dropna()
    assert joined["s"].corr(joined["same"]) > 0.3
    assert abs(joined["s"].corr(joined["next"])) < 0.1
