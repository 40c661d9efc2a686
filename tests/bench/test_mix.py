"""The request mix is seeded, covers the given symbols and dates, and Zipf skews it."""
from __future__ import annotations

from collections import Counter

import pytest

from stockdag.lab.bench import RequestMix
from stockdag.pipeline.request import SYMBOL_RE

SYMBOLS = ["AAPL", "GOOG", "IBM", "MSFT"]


def test_paths_are_well_formed_and_seeded():
    a = RequestMix(SYMBOLS, "2012-01-02", "2012-03-30", seed=7).paths(200)
    b = RequestMix(SYMBOLS, "2012-01-02", "2012-03-30", seed=7).paths(200)
    assert a == b
    assert a != RequestMix(SYMBOLS, "2012-01-02", "2012-03-30", seed=8).paths(200)
    for p in a:
        sym, date = p.removeprefix("/predict/").split("?as_of=")
        assert SYMBOL_RE.match(sym) and "2012-01-02" <= date <= "2012-03-30"


def test_uniform_covers_every_symbol_and_zipf_is_skewed():
    uniform = Counter(p.split("?")[0] for p in RequestMix(SYMBOLS, seed=1).paths(4000))
    zipf = Counter(p.split("?")[0] for p in RequestMix(SYMBOLS, distribution="zipf", s=1.5, seed=1).paths(4000))
    assert len(uniform) == 4 and max(uniform.values()) < 1200  # about 1000 each
    # weights 1/k^1.5 over 4 items give the top one 1/(1 + 0.354 + 0.192 + 0.125) = 60%
    assert max(zipf.values()) > 2000


@pytest.mark.parametrize("kwargs", [{"symbols": []}, {"symbols": SYMBOLS, "distribution": "pareto"},
                                    {"symbols": SYMBOLS, "start": "2012-01-07", "end": "2012-01-08"}])
def test_bad_mix_is_refused(kwargs):
    with pytest.raises(ValueError):
        RequestMix(**kwargs)


def test_a_mix_from_a_servers_ranges_draws_only_answerable_requests():
    # what /symbols reports (probe_stockdag returns it as a mapping): FB has no answerable date, and a
    # pretrained server answers AAPL only from February 2011
    ranges = {"AAPL": {"first": "2011-02-01", "last": "2013-03-01"}, "FB": None,
              "IBM": {"first": "2001-05-08", "last": "2011-12-30"}}
    mix = RequestMix(ranges, "2011-01-03", "2012-12-31", seed=3)
    assert sorted(mix.symbols) == ["AAPL", "IBM"]
    seen = Counter()
    for p in mix.paths(2000):
        sym, date = p.removeprefix("/predict/").split("?as_of=")
        seen[sym] += 1
        assert ranges[sym]["first"] <= date <= ranges[sym]["last"] and "2011-01-03" <= date <= "2012-12-31"
    assert set(seen) == {"AAPL", "IBM"}
    # a mix whose symbols are all answerable everywhere draws exactly what a plain list does (runs repeat)
    wide = {s: {"first": "2000-01-03", "last": "2013-03-01"} for s in SYMBOLS}
    assert RequestMix(wide, seed=5).paths(300) == RequestMix(SYMBOLS, seed=5).paths(300)
    with pytest.raises(ValueError, match="answer"):
        RequestMix({"FB": None}, "2011-01-03", "2012-12-31")
