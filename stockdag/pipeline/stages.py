"""The stage functions of the pipeline (C1-C16): plain functions of typed values.

They never know which executor or worker runs them. See :doc:`/guides/pipeline`.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ..domain.data.cache import Cache, cache_key, get_cache
from ..domain.data.news import NewsData, get_news_source
from ..domain.data.prices import PriceData, get_price_source
from ..domain.features import Features, make_features
from ..domain.market import MarketData, MarketFactors, fetch_market, market_features
from ..domain.models import Candidate, fit_predict, model_inputs, predict_pretrained, select
from ..domain.models import store as model_store
from ..domain.models.combine import conformal_halfwidth, ensemble_weights
from ..domain.sentiment import Sentiment, score_sentiment
from .granularity import GRANULARITIES, GRANULARITY_CHOICES, resolve_granularity  # noqa: F401  (re-exported)
from .request import Latency, Request, parse_request

if TYPE_CHECKING:
    import pandas as pd

T = TypeVar("T")


# ---------------------------------------------------------------- stage functions
def parse_request_stage(request: Request) -> Request:
    """C1: re-validate a request from its own fields (it may come from another process)."""
    return parse_request(
        request.symbol, request.as_of, profile=request.profile, source=request.source,
        data_dir=request.data_dir, request_id=request.request_id, settings=request.settings(),
        pipeline=request.pipeline,
    )


@dataclass(frozen=True)
class CacheLookup:
    """C6's answer: the cached prices and news for this request, or None on a miss."""

    prices: PriceData | None
    news: NewsData | None


def _cache(req: Request) -> Cache:
    return get_cache(req.cache_backend, req.cache_size, req.cache_dir, req.cache_url)


def cache_stage(req: Request) -> CacheLookup:
    """C6: look both retrievers' answers up in the cache (the retrievers fill it on a miss)."""
    cache = _cache(req)
    prices = cache.get(cache_key("prices", req))
    news = cache.get(cache_key("news", req))
    return CacheLookup(
        prices if isinstance(prices, PriceData) else None,
        news if isinstance(news, NewsData) else None,
    )


def emulated_delay(latency: Latency, key: str) -> float:
    """Sleep for one draw of the emulated fetch latency; return the seconds slept."""
    if latency.distribution == "none" or latency.mean <= 0:
        return 0.0
    # seed, request and stage only (``key`` names both): a rerun pays the same delays, so runs compare
    rng = random.Random(f"{latency.seed}|{key}")
    if latency.distribution == "constant":
        seconds = latency.mean
    elif latency.distribution == "uniform":
        seconds = rng.uniform(max(0.0, latency.mean - latency.spread), latency.mean + latency.spread)
    else:  # lognormal with the given mean: mu = ln(mean) - sigma^2 / 2
        import math

        sigma = latency.spread
        seconds = rng.lognormvariate(math.log(latency.mean) - sigma * sigma / 2, sigma)
    time.sleep(seconds)
    return seconds


def _look_again(req: Request, key: str, kind: type[T]) -> T | None:
    """A retriever's own look-up on C6's miss, for a per-process cache (lru) only: the retriever fills the
    cache of the process it runs in, which on a cluster need not be the one C6 looked in; a shared cache
    (disk, redis) was already asked by C6 and is not asked twice."""
    cache = _cache(req)
    if not cache.per_process:
        return None
    value = cache.get(key)
    return value if isinstance(value, kind) else None


def fetch_prices_stage(req: Request, lookup: CacheLookup) -> PriceData:
    """C2: prices from the cache, or from the source (then cached)."""
    key = cache_key("prices", req)
    cached = lookup.prices if lookup.prices is not None else _look_again(req, key, PriceData)
    if cached is not None:
        return PriceData(**{**cached.__dict__, "cache_hit": True})
    emulated_delay(req.latency, key)
    source = get_price_source(req.source, req.data_dir, req.timeout)
    data = source.fetch(req.symbol, req.as_of, req.history_days, req.min_history)
    _cache(req).set(key, data)
    return data


def fetch_news_stage(req: Request, lookup: CacheLookup) -> NewsData:
    """C5: headlines from the cache, or from the source (then cached)."""
    key = cache_key("news", req)
    cached = lookup.news if lookup.news is not None else _look_again(req, key, NewsData)
    if cached is not None:
        return NewsData(**{**cached.__dict__, "cache_hit": True})
    emulated_delay(req.latency, key)
    source = get_news_source(req.source, req.data_dir, req.timeout)
    data = source.fetch(req.symbol, req.as_of, req.news_days)
    _cache(req).set(key, data)
    return data


def make_features_stage(req: Request, prices: PriceData) -> Features:
    """C3: technical indicators."""
    return make_features(prices)


def score_sentiment_stage(req: Request, news: NewsData) -> Sentiment:
    """C4: VADER sentiment per day."""
    return score_sentiment(news)


def fetch_market_stage(req: Request) -> MarketData:
    """C13: the other symbols' prices (market and peers), a branch independent of C2."""
    return fetch_market(req.symbol, req.as_of, req.source, req.data_dir, req.history_days, req.timeout)


def market_features_stage(req: Request, market: MarketData) -> MarketFactors:
    """C14: equal-weighted index return, 5-day return and volatility of the peers."""
    return market_features(market)


def model_stage(name: str, req: Request, features: Features, sentiment: Sentiment,
                market: MarketFactors | None = None) -> Candidate:
    """A model stage (C7-C11 by default): the model called ``name`` (bound with functools.partial in the table)."""
    if req.profile == "refit":
        return fit_predict(name, features, sentiment, req.window, req.error_days, market)
    store = req.model_store or model_store.default_store()
    variant = model_store.variant(market is not None)
    meta = model_store.read_meta(store, req.symbol, variant)
    first_scored = features.frame.index[-1 - req.error_days].date()
    model_store.check_covers(meta, req.symbol, first_scored)
    est = model_store.load(store, req.symbol, name, variant, first_scored)  # its own train_end checked too
    return predict_pretrained(name, est, features, sentiment, req.error_days, market)


def model_frame(symbol: str, as_of: object, *, history_days: int, min_history: int, news_days: int,
                source: str | None = None, data_dir: str | None = None, pipeline: object = None) -> pd.DataFrame:
    """The frame the models see, built by the front end's stage functions: C2, C5, C3, C4 (and C13, C14
    when ``pipeline`` has the ``market`` step), with these history lengths, no cache and no emulated latency.

    ``stockdag train`` and ``stockdag evaluate`` fit on it, so a stage added before the models changes
    what they fit on too. Raises what the stages raise.
    """
    req = parse_request(symbol, as_of, source=source, data_dir=data_dir, pipeline=pipeline)
    req = dataclasses.replace(req, history_days=history_days, min_history=min_history, news_days=news_days,
                              cache_backend="none", latency=Latency())
    nothing_cached = CacheLookup(None, None)
    features = make_features_stage(req, fetch_prices_stage(req, nothing_cached))
    sentiment = score_sentiment_stage(req, fetch_news_stage(req, nothing_cached))
    market = market_features_stage(req, fetch_market_stage(req)) if "market" in req.pipeline.steps else None
    frame: pd.DataFrame = model_inputs(features, sentiment, market)
    return frame


@dataclass(frozen=True)
class Ensemble:
    """C15's answer: the inverse-recent-error weighted average of every candidate's return."""

    next_return: float
    next_close: float
    weights: dict[str, float]  # model -> weight, summing to 1


@dataclass(frozen=True)
class Interval:
    """C16's answer: a split-conformal interval around the winner's return (and the close it implies).

    A bound is infinite when the calibration days are too few for the level.
    """

    level: float
    lower: float
    upper: float
    lower_close: float
    upper_close: float
    calibration_days: int


@dataclass(frozen=True)
class Prediction:
    """C12's answer: the winning next-day prediction and the whole competition."""

    symbol: str
    as_of: dt.date
    profile: str
    source: str
    last_close: float
    next_close: float
    next_return: float
    winner: str
    candidates: tuple[Candidate, ...]
    sentiment: dict[str, Any]
    cache: dict[str, str]
    pipeline: str = "default"
    ensemble: Ensemble | None = None  # C15, when the pipeline spec has the ensemble step
    interval: Interval | None = None  # C16, when the pipeline spec has the interval step
    #: the as-of date asked for, when it was not a trading day (the prediction is from the last close before it)
    requested_as_of: dt.date | None = None


def select_stage(req: Request, prices: PriceData, news: NewsData, sentiment: Sentiment, *candidates: Candidate) -> Prediction:
    """C12: the lowest recent error wins; every candidate is kept."""
    sel = select(candidates)
    last_close = float(prices.frame["close"].iloc[-1])
    ret = sel.winner.prediction
    return Prediction(
        symbol=req.symbol, as_of=prices.as_of, profile=req.profile, source=req.source,
        last_close=last_close, next_close=last_close * (1.0 + ret), next_return=ret,
        winner=sel.winner.model, candidates=sel.candidates, sentiment=sentiment.summary(),
        cache={"prices": "hit" if prices.cache_hit else "miss", "news": "hit" if news.cache_hit else "miss"},
        pipeline=req.pipeline.name,
        requested_as_of=req.as_of if req.as_of is not None and req.as_of != prices.as_of else None,
    )


def ensemble_stage(req: Request, pred: Prediction) -> Prediction:
    """C15: inverse-recent-error weighted average of every candidate (beside C12's winner)."""
    w = ensemble_weights([c.recent_error for c in pred.candidates])
    ret = float(sum(wi * c.prediction for wi, c in zip(w, pred.candidates)))
    return dataclasses.replace(pred, ensemble=Ensemble(
        next_return=ret, next_close=pred.last_close * (1.0 + ret),
        weights={c.model: float(wi) for wi, c in zip(w, pred.candidates)},
    ))


def interval_stage(req: Request, pred: Prediction) -> Prediction:
    """C16: split-conformal interval around the winner's return from its recent out-of-sample residuals."""
    level = req.pipeline.interval_level
    winner = next(c for c in pred.candidates if c.model == pred.winner)
    half = conformal_halfwidth(winner.recent_residuals, level)
    lo, hi = pred.next_return - half, pred.next_return + half
    return dataclasses.replace(pred, interval=Interval(
        level=level, lower=lo, upper=hi,
        lower_close=pred.last_close * (1.0 + lo), upper_close=pred.last_close * (1.0 + hi),
        calibration_days=len(winner.recent_residuals),
    ))
