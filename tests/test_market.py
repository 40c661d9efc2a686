"""C13 fetch_market and C14 market_features: peers, the index, beta and relative strength, no look-ahead."""
import datetime as dt

import numpy as np
import pandas as pd

from stockdag.domain.data.prices import BundledPrices
from stockdag.domain.market import MARKET_FEATURES, MarketData, fetch_market, market_features, with_market

AS_OF = dt.date(2012, 6, 1)


def test_the_market_is_every_other_symbol_up_to_the_as_of_date():
    m = fetch_market("AAPL", AS_OF, "bundled", None, 300)
    assert set(m.closes.columns) == set(BundledPrices().symbols()) - {"AAPL"}
    assert m.closes.index.max().date() <= AS_OF


def test_the_index_is_the_mean_of_the_peers_returns():
    idx = pd.date_range("2012-01-02", periods=30, freq="B")
    closes = pd.DataFrame({"A": 100 * 1.01 ** np.arange(30), "B": 50 * 0.99 ** np.arange(30)}, index=idx)
    f = market_features(MarketData("X", None, closes)).frame
    np.testing.assert_allclose(f["mkt_ret"].iloc[1:], 0.0, atol=1e-12)  # +1% and -1% each day
    np.testing.assert_allclose(f["mkt_ret_5"].iloc[5:], 0.0, atol=1e-12)


def test_beta_to_itself_is_one_and_relative_strength_to_itself_zero():
    idx = pd.date_range("2011-01-03", periods=120, freq="B")
    rng = np.random.default_rng(0)
    ret = pd.Series(rng.normal(0, 0.01, 120), index=idx)
    closes = pd.DataFrame({"A": 100 * (1 + ret).cumprod()}, index=idx)
    own = pd.DataFrame({"ret_1": closes["A"].pct_change()}, index=idx)
    out = with_market(own, market_features(MarketData("X", None, closes)))
    np.testing.assert_allclose(out["beta_60"].iloc[30:], 1.0, atol=1e-9)
    np.testing.assert_allclose(out["rel_str_20"].iloc[30:], 0.0, atol=1e-12)
    assert list(out.columns[-len(MARKET_FEATURES):]) == MARKET_FEATURES


def test_a_factor_at_date_t_does_not_change_when_later_prices_arrive():
    early = market_features(fetch_market("AAPL", AS_OF, "bundled", None, 300)).frame
    later = market_features(fetch_market("AAPL", dt.date(2012, 9, 1), "bundled", None, 400)).frame
    common = early.index[-100:]
    pd.testing.assert_frame_equal(early.loc[common], later.loc[common])
