"""The inference pipeline: the stage table (C1-C12, and more) and the ``dask.delayed`` graph.

Figure 1.1 of the design report, as data::

    C1 parse_request
     ├─ C6 cache ─┬─ C2 fetch_prices ── C3 make_features ──┐
     │            └─ C5 fetch_news ──── C4 score_sentiment ┼─ models ── C12 select ── [C15 ensemble] ── [C16 interval]
     └─ [C13 fetch_market ── C14 market_features] ─────────┘

The table is derived from a pipeline spec (:mod:`stockdag.pipeline_spec`) by
:func:`stage_table`: its models (C7-C11 by default, any of
:data:`stockdag.models.REGISTRY`) and its optional steps (bracketed). The spec
travels in the request, so every function here reads the table of
``request.pipeline``. :data:`STAGES` is the default spec's table; :func:`build_graph` turns it
into a delayed graph (keys ``<stage>-<request_id>``, unique per request, and
the annotation ``stockdag={stage, name, request, symbol}`` that placement
strategies read), and :func:`run_stages` runs the same functions one after
another with no Dask: the centralized baseline. Stage functions are plain
functions of typed values; they never know which executor runs them.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dask
from dask.delayed import Delayed, delayed

from . import config
from .data.cache import cache_key, get_cache
from .data.news import NewsData, get_news_source
from .data.prices import PriceData, get_price_source
from .errors import InvalidRequest
from .features import Features, make_features
from .granularity import GRANULARITIES, GRANULARITY_CHOICES, resolve_granularity  # noqa: F401  (re-exported)
from .market import MarketData, MarketFactors, fetch_market, market_features
from .models import MODELS_BY_NAME, Candidate, fit_predict, model_inputs, predict_pretrained, select
from .models import store as model_store
from .models.combine import conformal_halfwidth, ensemble_weights
from .pipeline_spec import DEFAULT as DEFAULT_PIPELINE
from .pipeline_spec import PipelineSpec
from .request import Latency, Request, parse_request
from .sentiment import Sentiment, score_sentiment
from .trace import Traced, run_traced


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


def _cache(req: Request):
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


def fetch_prices_stage(req: Request, lookup: CacheLookup) -> PriceData:
    """C2: prices from the cache, or from the source (then cached)."""
    if lookup.prices is not None:
        return PriceData(**{**lookup.prices.__dict__, "cache_hit": True})
    key = cache_key("prices", req)
    emulated_delay(req.latency, key)
    source = get_price_source(req.source, req.data_dir, req.timeout)
    data = source.fetch(req.symbol, req.as_of, req.history_days, req.min_history)
    _cache(req).set(key, data)
    return data


def fetch_news_stage(req: Request, lookup: CacheLookup) -> NewsData:
    """C5: headlines from the cache, or from the source (then cached)."""
    if lookup.news is not None:
        return NewsData(**{**lookup.news.__dict__, "cache_hit": True})
    key = cache_key("news", req)
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
    est = model_store.load(store, req.symbol, name, variant)
    return predict_pretrained(name, est, features, sentiment, req.error_days, market)


def model_frame(symbol: str, as_of, *, history_days: int, min_history: int, news_days: int,
                source: str | None = None, data_dir: str | None = None, pipeline=None):
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
    return model_inputs(features, sentiment, market)


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
    sentiment: dict
    cache: dict
    pipeline: str = "default"
    #: C15's answer: {"next_return", "next_close", "weights": {model: weight}}
    ensemble: dict | None = None
    #: C16's answer: {"level", "lower", "upper" (returns), "lower_close", "upper_close", "calibration_days"}
    interval: dict | None = None
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
    return dataclasses.replace(pred, ensemble={
        "next_return": ret, "next_close": pred.last_close * (1.0 + ret),
        "weights": {c.model: float(wi) for wi, c in zip(w, pred.candidates)},
    })


def interval_stage(req: Request, pred: Prediction) -> Prediction:
    """C16: split-conformal interval around the winner's return from its recent out-of-sample residuals."""
    level = req.pipeline.interval_level
    winner = next(c for c in pred.candidates if c.model == pred.winner)
    half = conformal_halfwidth(winner.recent_residuals, level)
    lo, hi = pred.next_return - half, pred.next_return + half
    return dataclasses.replace(pred, interval={
        "level": level, "lower": lo, "upper": hi,
        "lower_close": pred.last_close * (1.0 + lo), "upper_close": pred.last_close * (1.0 + hi),
        "calibration_days": len(winner.recent_residuals),
    })


# ---------------------------------------------------------------- the stage table
@dataclass(frozen=True)
class Stage:
    """One pipeline stage: id (C1..C12), name (used in task keys), function, inputs (stage ids)."""

    id: str
    name: str
    func: Callable[..., Any]
    inputs: tuple[str, ...]
    description: str


@functools.lru_cache(maxsize=64)
def stage_table(spec: PipelineSpec = DEFAULT_PIPELINE) -> tuple[Stage, ...]:
    """The stages of ``spec``, in topological order; the last one answers the request."""
    market = "market" in spec.steps
    models = [MODELS_BY_NAME[name] for name in spec.models]
    model_inputs = ("C1", "C3", "C4", "C14") if market else ("C1", "C3", "C4")
    stages = [
        Stage("C1", "parse_request", parse_request_stage, (), "validate symbol, as-of date, profile; normalise"),
        Stage("C6", "cache", cache_stage, ("C1",), "caching layer in front of C2 and C5"),
        Stage("C2", "fetch_prices", fetch_prices_stage, ("C1", "C6"), "price retriever"),
        Stage("C5", "fetch_news", fetch_news_stage, ("C1", "C6"), "news retriever"),
        Stage("C3", "make_features", make_features_stage, ("C1", "C2"), "technical indicators"),
        Stage("C4", "score_sentiment", score_sentiment_stage, ("C1", "C5"), "VADER sentiment per day"),
    ]
    if market:
        stages += [
            Stage("C13", "fetch_market", fetch_market_stage, ("C1",), "market retriever: the other symbols' prices"),
            Stage("C14", "market_features", market_features_stage, ("C1", "C13"), "market and peer factors"),
        ]
    stages += [
        Stage(m.id, m.name, functools.partial(model_stage, m.name), model_inputs, f"model: {m.family}")
        for m in models
    ]
    stages.append(Stage("C12", "select", select_stage, ("C1", "C2", "C5", "C4", *(m.id for m in models)),
                        "competition: lowest recent error wins"))
    last = "C12"
    if "ensemble" in spec.steps:
        stages.append(Stage("C15", "ensemble", ensemble_stage, ("C1", last), "inverse-error weighted ensemble"))
        last = "C15"
    if "interval" in spec.steps:
        stages.append(Stage("C16", "interval", interval_stage, ("C1", last), "split-conformal prediction interval"))
    return tuple(stages)


def final_id(stages: tuple[Stage, ...]) -> str:
    """The id of the stage whose output is the request's answer (the table's last)."""
    return stages[-1].id


def stage_order(stages: tuple[Stage, ...] | None = None) -> dict[str, int]:
    """stage id -> position in the table (the default spec's when None)."""
    return {s.id: i for i, s in enumerate(stages or STAGES)}


def stage_layers(stages: tuple[Stage, ...] | None = None) -> dict[str, int]:
    """stage id -> its layer in the DAG: 0 for stages without inputs, else one more than its deepest input.

    Stages of one layer can run at once; the largest layer is the pipeline's parallel width.
    """
    layer: dict[str, int] = {}
    for stage in stages or STAGES:  # the table lists every stage after its inputs
        layer[stage.id] = 1 + max((layer[i] for i in stage.inputs), default=-1)
    return layer


@functools.cache
def active_table() -> tuple[Stage, ...]:
    """The stage table of this process's configured pipeline (``stockdag.pipeline.spec``), for client-side tools.

    Requests carry their own spec; use ``stage_table(request.pipeline)`` wherever a request is at hand.
    """
    from .pipeline_spec import load_pipeline

    return stage_table(load_pipeline(config.get("pipeline.spec")))


@functools.cache
def step_stage_ids(step: str) -> tuple[str, ...]:
    """The stage ids a spec's optional ``step`` adds to the table."""
    base = {s.id for s in stage_table(DEFAULT_PIPELINE)}
    return tuple(s.id for s in stage_table(dataclasses.replace(DEFAULT_PIPELINE, steps=(step,))) if s.id not in base)


def spec_for_ids(ids) -> PipelineSpec:
    """The pipeline whose stages are ``ids`` (e.g. the ids of recorded traces), for tools that have no spec.

    Models are taken in registry order, which only changes display order: the
    graph's edges are the same.
    """
    from .models import REGISTRY
    from .pipeline_spec import STEPS

    ids = set(ids)
    models = tuple(m.name for m in REGISTRY if m.id in ids) or DEFAULT_PIPELINE.models
    steps = tuple(step for step in STEPS if set(step_stage_ids(step)) <= ids)
    return PipelineSpec(name="traced", models=models, steps=steps)


def order_stage_ids(ids) -> list[str]:
    """``ids`` in the order of the stage table they belong to; ids of no table last, sorted."""
    ids = set(ids)
    order = stage_order(stage_table(spec_for_ids(ids)))
    return sorted(ids, key=lambda i: (order.get(i, len(order)), i))


#: the default spec's table (C1-C12, five models); code serving a request reads ``stage_table(request.pipeline)``
STAGES: tuple[Stage, ...] = stage_table(DEFAULT_PIPELINE)
STAGES_BY_ID = {s.id: s for s in STAGES}
FINAL = final_id(STAGES)


def task_key(stage: Stage, request_id: str) -> str:
    """The task key of ``stage`` for one request: unique per request."""
    return f"{stage.name}-{request_id}"


# ---------------------------------------------------------------- granularity
@dataclass(frozen=True)
class TaskGroup:
    """Stages that run in one task, in table order; ``name`` is used in its task key."""

    stages: tuple[Stage, ...]
    whole: bool = False  # the whole pipeline in one task (granularity request)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.stages)

    @property
    def name(self) -> str:
        if self.whole:
            return "pipeline"
        if len(self.stages) == 1:
            return self.stages[0].name
        return "+".join(s.name for s in self.stages)

    @property
    def code(self) -> str:
        return "+".join(self.ids)


def _reduced_edges(stages: tuple[Stage, ...]) -> dict[str, set[str]]:
    """stage id -> its direct predecessors once implied edges (a -> c when a -> b -> c) are dropped."""
    ancestors: dict[str, set[str]] = {}
    for s in stages:  # the table is in topological order
        ancestors[s.id] = set(s.inputs).union(*(ancestors[i] for i in s.inputs)) if s.inputs else set()
    return {
        s.id: {i for i in s.inputs if not any(i in ancestors[j] for j in s.inputs if j != i)}
        for s in stages
    }


@functools.cache
def task_groups(granularity: str = "stage", stages: tuple[Stage, ...] = STAGES) -> tuple[TaskGroup, ...]:
    """The tasks of one request at ``granularity`` (see :data:`GRANULARITIES`), in topological order.

    Derived from the stage table: ``branch`` fuses a stage into its only direct
    predecessor when that predecessor has no other direct successor (a chain).
    """
    if granularity == "stage":
        return tuple(TaskGroup((s,)) for s in stages)
    if granularity == "request":
        return (TaskGroup(tuple(stages), whole=True),)
    if resolve_granularity(granularity, None) != "branch":
        raise InvalidRequest(f"granularity {granularity!r} depends on the cluster: resolve it first (resolve_granularity)")
    preds = _reduced_edges(stages)
    succs: dict[str, set[str]] = {s.id: set() for s in stages}
    for sid, ps in preds.items():
        for p in ps:
            succs[p].add(sid)
    head: dict[str, str] = {}  # stage id -> id of the first stage of its chain
    chains: dict[str, list[Stage]] = {}
    for s in stages:
        (p,) = preds[s.id] if len(preds[s.id]) == 1 else (None,)
        if p is not None and len(succs[p]) == 1:
            head[s.id] = head[p]
        else:
            head[s.id] = s.id
        chains.setdefault(head[s.id], []).append(s)
    return tuple(TaskGroup(tuple(chain)) for chain in chains.values())


def run_group(stages: tuple[Stage, ...], exports: tuple[str, ...], *upstream: Any, final: str = FINAL) -> Any:
    """Run ``stages`` in order in one task, each traced as its own stage.

    ``upstream`` holds the request (for a group with a stage without inputs)
    and the ``{stage id: Traced}`` exports of upstream groups. Returns the
    Traced of ``final`` (the table's last stage) if this group runs it, else ``{id: Traced}`` of
    ``exports`` (the stages that later groups read).
    """
    done: dict[str, Any] = {}
    request = None
    for item in upstream:
        if isinstance(item, Request):
            request = item
        else:
            done.update(item)
    for stage in stages:
        args = [done[i] for i in stage.inputs] if stage.inputs else [request]
        done[stage.id] = run_traced(stage.id, stage.name, stage.func, *args)
    if final in done:
        return done[final]
    return {i: done[i] for i in exports}


def graph_keys(request_id: str, granularity: str = "stage", pipeline: PipelineSpec = DEFAULT_PIPELINE) -> dict[str, str]:
    """stage id -> key of the task that runs it, for one request at ``granularity``."""
    return {s.id: f"{g.name}-{request_id}" for g in task_groups(granularity, stage_table(pipeline)) for s in g.stages}


def request_task(request: Request) -> tuple[str, Callable[[Request], Any], dict[str, Any]]:
    """The one task of ``request`` at the ``request`` granularity: its key, its function and its annotation.

    :func:`build_graph` wraps it in a delayed; the distributed executor submits it as it is
    (``Client.submit``), which skips building and converting a task graph for a graph of one task.
    """
    stages = stage_table(request.pipeline)
    (group,) = task_groups("request", stages)
    func = functools.partial(run_group, group.stages, (), final=final_id(stages))
    annotations = {"stage": group.code, "name": group.name, "request": request.request_id, "symbol": request.symbol}
    return f"{group.name}-{request.request_id}", func, annotations


def build_graph(request: Request, granularity: str | None = None) -> Delayed:
    """The delayed graph of one request; computing it gives a :class:`~stockdag.trace.Traced` Prediction.

    ``granularity`` (default ``stockdag.pipeline.granularity``) says how many
    stages a task runs; every stage is traced on its own at every granularity.
    Compute with ``optimize_graph=False``: fusion would merge stages and drop
    the per-task annotations the placement strategies read.
    """
    granularity = resolve_granularity(config.get("pipeline.granularity", override_with=granularity), None)
    rid = request.request_id
    stages = stage_table(request.pipeline)
    final = final_id(stages)
    if granularity == "stage":
        nodes: dict[str, Delayed] = {}
        for stage in stages:
            args = [nodes[i] for i in stage.inputs] if stage.inputs else [request]
            with dask.annotate(stockdag={"stage": stage.id, "name": stage.name, "request": rid, "symbol": request.symbol}):
                nodes[stage.id] = delayed(run_traced, pure=False)(
                    stage.id, stage.name, stage.func, *args, dask_key_name=task_key(stage, rid)
                )
        return nodes[final]
    if granularity == "request":
        key, func, annotations = request_task(request)
        with dask.annotate(stockdag=annotations):
            return delayed(func, pure=False)(request, dask_key_name=key)
    groups = task_groups(granularity, stages)
    owner = {s.id: g for g in groups for s in g.stages}
    nodes = {}
    for g in groups:
        ids = set(g.ids)
        inputs = [i for s in g.stages for i in s.inputs if i not in ids]
        upstream: list[Any] = []
        for i in inputs:
            node = nodes[owner[i].code]
            if not any(node is u for u in upstream):
                upstream.append(node)
        if any(not s.inputs for s in g.stages):
            upstream.insert(0, request)
        exports = tuple(
            s.id for s in g.stages
            if any(i == s.id for other in groups if other is not g for t in other.stages for i in t.inputs)
        )
        with dask.annotate(stockdag={"stage": g.code, "name": g.name, "request": rid, "symbol": request.symbol}):
            # a partial, so delayed does not walk the stage table as if it held tasks
            nodes[g.code] = delayed(functools.partial(run_group, g.stages, exports, final=final), pure=False)(
                *upstream, dask_key_name=f"{g.name}-{rid}"
            )
    return nodes[owner[final].code]


def run_stages(request: Request) -> Traced:
    """Run every stage in table order in this process, without Dask (the centralized baseline)."""
    done: dict[str, Traced] = {}
    stages = stage_table(request.pipeline)
    for stage in stages:
        args = [done[i] for i in stage.inputs] if stage.inputs else [request]
        done[stage.id] = run_traced(stage.id, stage.name, stage.func, *args)
    return done[final_id(stages)]
