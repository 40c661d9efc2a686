"""The discrete-event model of the serving system, on SimPy.

What is modelled, and what each piece stands for in the real system:

* **Arrivals** come from :func:`stockdag.lab.bench.loadgen.intended_times` (open
  loop) or ``users`` closed-loop users, exactly as ``stockdag bench`` makes them,
  and the request mix from :class:`stockdag.lab.bench.RequestMix`.
* **Centralized** (one server thread, FIFO) and **replicated** (K processes
  taking whole requests from one queue) run the stages back to back.
* **Distributed**: a request pays ``request`` seconds of client/server overhead,
  then its tasks are placed by the *same strategy object* the scheduler plugin
  uses (:data:`stockdag.placement.STRATEGIES`, fed the same plain values:
  :class:`~stockdag.placement.TaskInfo`, :class:`~stockdag.placement.WorkerInfo`
  with occupancy, and a real :class:`~stockdag.placement.CostModel` that learns
  from the simulated completions). A task a strategy leaves to Dask (``dask``)
  goes where :func:`dask_decide_worker` says, a model of
  ``distributed.scheduler.decide_worker`` (not a stockdag strategy).
  A task becomes ready ``hop`` seconds after its last input finished (plus the
  sending worker's link latency: the scheduler hears of it through that link),
  then passes the single-threaded scheduler (``task`` seconds each, queued),
  then fetches inputs held elsewhere (link latency + bytes / bandwidth), then
  waits for a thread of its worker (Dask's priority: earlier requests first,
  then ``dask.order``'s order, which is also the order strategies see tasks in).
* **Granularity**: a request is built at ``SimConfig.granularity`` as the
  executor builds it (``auto``/``load`` resolved per request from the
  cluster's threads and the requests in flight): a fused task runs its stages
  back to back, costs their sum, passes the scheduler once, and only edges
  between tasks are hops (:class:`Shape`).
* **Workers** have threads, a CPU speed factor (a stage takes its drawn
  duration / speed) and a link; workers on one host share its cores.
* **Stage costs** are drawn per request as one whole measured request (all
  stage durations of one traced request at speed 1), so correlations between
  stages of one request are kept.

Not modelled: Dask's work stealing, the GIL inside a multi-threaded worker,
memory, the generator's own lag (requests are sent at their intended time).
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Sequence

import numpy as np
import simpy

from ...pipeline.bounds import critical_path  # noqa: F401  (the simulator's bound, exported by stockdag.lab.simulate)
from ...pipeline.granularity import GRANULARITY_CHOICES, resolve_granularity
from ...pipeline.modes import check_mode
from ...pipeline.table import FINAL, STAGES
from ...placement import CostModel, TaskInfo, WorkerInfo, make_strategy
from ...placement.registry import check_strategy
from ..bench.loadgen import BenchConfig, intended_times, result_from
from ..bench.mix import RequestMix

#: modes of the service (as in ``stockdag serve``)


@dataclasses.dataclass(frozen=True)
class SimWorker:
    """One worker (a process) of the simulated cluster.

    ``speed`` divides every stage duration (1.0: the machine the stage costs
    were measured on); ``link_latency`` is added to every message the worker
    sends (a completion to the scheduler, a result to another worker);
    ``bandwidth`` is bytes/s of its link; ``host`` names the machine, whose
    ``cores`` all its workers share.
    """

    name: str
    threads: int = 1
    speed: float = 1.0
    link_latency: float = 0.0
    bandwidth: float = 1e9
    host: str = "local"


@dataclasses.dataclass(frozen=True)
class Overheads:
    """Fitted overheads (seconds), see :mod:`stockdag.lab.simulate.calibrate`."""

    central_request: float = 0.003   # centralized/replicated: per request, outside the stages
    request: float = 0.02            # distributed: per request (client, graph submission, result)
    hop: float = 0.004               # distributed: last input finished -> dependent known ready
    task: float = 0.0005             # distributed: scheduler time per task (one scheduler, queued)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Costs:
    """What the simulator draws stage costs from.

    ``samples`` is an array (requests x stages, in :data:`STAGE_IDS` order) of
    measured stage durations in seconds at speed 1; ``nbytes`` the measured
    size of each stage's output (what a dependent fetches).
    """

    samples: np.ndarray
    nbytes: dict[str, float]
    profile: str = "refit"

    def mean_request(self) -> float:
        return float(self.samples.sum(axis=1).mean())


STAGE_IDS = tuple(s.id for s in STAGES)
_INDEX = {s.id: i for i, s in enumerate(STAGES)}
_NAMES = tuple(s.name for s in STAGES)


@functools.cache
def priority_order(granularity: str = "stage") -> tuple[int, ...]:
    """Task indices (of :func:`shape`'s tasks) in Dask's priority order for one request (``dask.order`` on the real graph).

    The scheduler plugin hands a strategy a request's tasks in this order (and
    a worker runs ready tasks by it), so order-sensitive strategies such as
    ``round-robin`` deal them exactly as on a cluster.
    """
    from dask.order import order

    from ...pipeline.graph import build_graph, task_groups
    from ...pipeline.request import parse_request

    req = parse_request("AAPL", "2012-06-01")  # any valid request: the graph's shape does not depend on it
    prio = order(dict(build_graph(req, granularity).__dask_graph__()))
    keys = [f"{g.name}-{req.request_id}" for g in task_groups(granularity, STAGES)]
    return tuple(sorted(range(len(keys)), key=lambda i: prio[keys[i]]))


@dataclasses.dataclass(frozen=True)
class Shape:
    """The tasks of one request at a granularity (:func:`stockdag.pipeline.task_groups`), as index tuples.

    A task runs its ``members`` (stage indices, in table order) back to back:
    its cost is the sum of theirs, it passes the scheduler once, and only an
    edge between two tasks is a hop. ``names`` are what the plugin shows a
    strategy and what the cost model learns under (the task's annotation name:
    the stage's name at ``stage``, ``a+b`` for a fused chain, ``pipeline`` for
    the whole request); ``exports`` the stages whose outputs a dependent task
    fetches (their sizes add up).
    """

    granularity: str
    names: tuple[str, ...]
    codes: tuple[str, ...]
    members: tuple[tuple[int, ...], ...]
    inputs: tuple[tuple[int, ...], ...]
    successors: tuple[tuple[int, ...], ...]
    exports: tuple[tuple[int, ...], ...]
    roots: tuple[int, ...]
    final: int
    order: tuple[int, ...]
    rank: tuple[int, ...]


@functools.cache
def shape(granularity: str = "stage") -> Shape:
    """The :class:`Shape` of one request of the default table at a resolved ``granularity`` (stage, branch, request)."""
    from ...pipeline.graph import task_groups

    groups = task_groups(granularity, STAGES)
    owner = {s.id: k for k, g in enumerate(groups) for s in g.stages}
    inputs = tuple(tuple(sorted({owner[d] for s in g.stages for d in s.inputs if owner[d] != k}))
                   for k, g in enumerate(groups))
    successors = tuple(tuple(j for j, deps in enumerate(inputs) if k in deps) for k in range(len(groups)))
    read_elsewhere = {d for k, g in enumerate(groups) for s in g.stages for d in s.inputs if owner[d] != k}
    exports = tuple(tuple(_INDEX[s.id] for s in g.stages if s.id in read_elsewhere or s.id == FINAL) for g in groups)
    order = priority_order(granularity)
    rank = [0] * len(groups)
    for r, k in enumerate(order):
        rank[k] = r
    return Shape(granularity, tuple(g.name for g in groups), tuple(g.code for g in groups),
                 tuple(tuple(_INDEX[s.id] for s in g.stages) for g in groups), inputs, successors, exports,
                 tuple(k for k, deps in enumerate(inputs) if not deps), owner[FINAL], order, tuple(rank))


class _Request:
    """Where one request's tasks run and which are done."""

    __slots__ = ("index", "shape", "where", "est", "sample", "finished", "ran_on", "remaining", "spans")

    def __init__(self, index, shape, where, est, sample, finished, spans=None):
        self.index, self.shape, self.where, self.est, self.sample, self.finished = index, shape, where, est, sample, finished
        self.ran_on = [None] * len(shape.names)
        self.remaining = [len(d) for d in shape.inputs]
        self.spans = spans


def dask_decide_worker(deps_on: Sequence[int], nbytes: Sequence[float], occupancy: Sequence[float],
                       workers: Sequence[SimWorker], bandwidth: float, turn: int = 0) -> int:
    """A model of ``distributed.scheduler.decide_worker``: which worker Dask picks for a ready task.

    Candidates are the workers holding an input (all workers for a root
    task); the pick minimises the expected start time: occupancy per thread plus
    the bytes it would have to fetch over ``bandwidth``. Dask breaks ties
    among equally idle workers by set order, which is arbitrary: here the
    ``turn``-th of the tied workers (modulo their number) is taken.
    """
    cand = sorted(set(deps_on)) if deps_on else range(len(workers))
    best_v, tied = math.inf, []
    for w in cand:
        missing = sum(b for d, b in zip(deps_on, nbytes) if d != w)
        v = occupancy[w] / workers[w].threads + missing / bandwidth
        if v < best_v - 1e-12:
            best_v, tied = v, [w]
        elif v <= best_v + 1e-12:
            tied.append(w)
    return tied[turn % len(tied)]


class _Run:
    """The state of one simulation (one configuration at one load level)."""

    def __init__(self, env, mode, workers, strategy, costs, overheads, cores, replicas, seed, max_in_flight,
                 trace=False, carry=None, granularity="stage"):
        carry = {} if carry is None else carry
        self.env = env
        self.trace = trace
        self.mode = mode
        self.workers = list(workers)
        self.costs = costs
        self.ov = overheads
        self.rng = np.random.default_rng(seed)
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        self.rows: list[tuple] = []
        self.task_count = 0
        if mode == "distributed":
            # what the scheduler keeps between requests: carried across points when ``carry`` is given
            if not carry:
                carry.update(strategy=make_strategy(strategy) if isinstance(strategy, str) else strategy,
                             model=CostModel(), sums={}, counts={}, turn=0)
            self.carry = carry
            self.strategy, self.model = carry["strategy"], carry["model"]
            self._sum, self._n = carry["sums"], carry["counts"]
            self.scheduler_free = 0.0
            self.stage_nbytes = [float(costs.nbytes.get(s, 0.0)) for s in STAGE_IDS]
            self.granularity = granularity
            self.total_threads = sum(w.threads for w in self.workers)
            self._task_nbytes: dict[str, list[float]] = {}
            self.threads = [simpy.PriorityResource(env, capacity=w.threads) for w in self.workers]
            self.occupancy = [0.0] * len(self.workers)
            self.addresses = [f"sim://{w.name}" for w in self.workers]
            self.by_address = {a: i for i, a in enumerate(self.addresses)}
            hosts: dict[str, int] = {}
            for w in self.workers:
                hosts[w.host] = hosts.get(w.host, 0) + w.threads
            # a host's cores are a resource only where its workers have more threads than it has cores
            self.cores = {h: simpy.Resource(env, capacity=max(1, int(cores.get(h, n))))
                          for h, n in hosts.items() if cores.get(h) is not None and n > cores[h]}
        else:
            k = 1 if mode == "centralized" else int(replicas)
            host_cores = cores.get("local")
            if host_cores is not None:
                k = min(k, max(1, int(host_cores)))
            self.server = simpy.Resource(env, capacity=k)

    # ---------------------------------------------------------------- one request
    def request(self, index: int, intended: float, path: str, warmup: bool, done=None):
        env = self.env
        sent = env.now
        if self.max_in_flight is not None and self.in_flight >= self.max_in_flight:
            self.rows.append((index, path, intended, sent, sent, 503, "http_503", sent - intended, 0.0, warmup, None, None))
            if done is not None:
                done.succeed()
            return
        self.in_flight += 1
        sample = self.costs.samples[int(self.rng.integers(len(self.costs.samples)))]
        trace = None
        if self.mode == "distributed":
            spans = [] if self.trace else None
            yield from self._distributed(index, path, sample, spans)
            if spans is not None:
                trace = json.dumps(sorted(spans, key=lambda e: e["start"]), separators=(",", ":"))
        else:
            yield env.timeout(self.ov.central_request)
            with self.server.request() as slot:
                yield slot
                yield env.timeout(float(sample.sum()))
        self.in_flight -= 1
        end = env.now
        self.rows.append((index, path, intended, sent, end, 200, "", end - intended, end - sent, warmup, trace, None))  # no cache outcome: the model does not simulate caches
        if done is not None:
            done.succeed()

    def nbytes(self, shape: Shape) -> list[float]:
        """Bytes a dependent fetches from each task of ``shape``: the sizes of the stage outputs it exports."""
        out = self._task_nbytes.get(shape.granularity)
        if out is None:
            out = self._task_nbytes[shape.granularity] = [sum(self.stage_nbytes[j] for j in ex) for ex in shape.exports]
        return out

    def _distributed(self, index: int, path: str, sample, spans=None):
        env = self.env
        # as DistributedExecutor.granularity_now: auto/load resolved from the cluster's threads and the requests
        # already in flight (this one is counted in self.in_flight, not yet submitted)
        sh = shape(resolve_granularity(self.granularity, self.total_threads, self.in_flight - 1))
        yield env.timeout(self.ov.request)
        n = len(sh.names)
        if self.strategy.plans:  # as the plugin: a strategy that plans nothing (dask) is not called
            rid = f"{index:032x}"
            symbol = path.split("/")[2].split("?")[0] if path.startswith("/predict/") else None
            keys = [f"{name}-{rid}" for name in sh.names]
            tasks = [TaskInfo(keys[i], sh.names[i], rid, sh.codes[i], symbol, tuple(keys[d] for d in sh.inputs[i]))
                     for i in sh.order]
            infos = [WorkerInfo(self.addresses[i], w.name, w.threads, self.occupancy[i])
                     for i, w in enumerate(self.workers)]
            plan = self.strategy.place(tasks, infos, self.model)
            where = [self.by_address[plan[k]] if plan.get(k) is not None else None for k in keys]
        else:
            where = [None] * n
        model = self.model
        est = [0.0] * n
        for i, w in enumerate(where):
            if w is not None:
                est[i] = model.estimate(sh.names[i], self.workers[w].name)
                self.occupancy[w] += est[i]
        state = _Request(index, sh, where, est, sample, env.event(), spans)
        for i in sh.roots:
            env.process(self._task(state, i, None))
        yield state.finished

    def _ready(self, state: _Request, i: int) -> None:
        """Task ``i`` finished: start the dependents whose inputs are now all done."""
        for s in state.shape.successors[i]:
            state.remaining[s] -= 1
            if not state.remaining[s]:
                self.env.process(self._task(state, s, i))

    def _task(self, state: _Request, i: int, last):
        # the single scheduler thread serves the messages in the order they were sent (FIFO); computed
        # directly instead of with a Resource: three fewer events per task
        env = self.env
        sh = state.shape
        deps = sh.inputs[i]
        ran_on = state.ran_on
        arrive = env.now + (self.ov.hop + self.workers[ran_on[last]].link_latency if last is not None else 0.0)
        start = arrive if arrive > self.scheduler_free else self.scheduler_free
        self.scheduler_free = start + self.ov.task
        w = state.where[i]
        est = state.est[i]
        nbytes = self.nbytes(sh)
        if w is None:
            w = dask_decide_worker([ran_on[d] for d in deps], [nbytes[d] for d in deps],
                                   self.occupancy, self.workers, self.model.bandwidth, self.carry["turn"])
            if not deps:
                self.carry["turn"] += 1
            est = self.model.estimate(sh.names[i], self.workers[w].name)
            self.occupancy[w] += est
        worker = self.workers[w]
        # inputs held elsewhere are fetched in parallel: the slowest decides
        fetch = 0.0
        for d in deps:
            src = ran_on[d]
            if src != w:
                sw = self.workers[src]
                f = sw.link_latency + nbytes[d] / min(sw.bandwidth, worker.bandwidth)
                if f > fetch:
                    fetch = f
        yield env.timeout(self.scheduler_free - env.now + fetch)
        # a fused task runs its stages back to back
        parts = [float(state.sample[j]) / worker.speed for j in sh.members[i]]
        seconds = sum(parts)
        # Dask's priority: earlier requests first, then the graph's own order
        with self.threads[w].request(priority=state.index * len(STAGES) + sh.rank[i]) as slot:
            yield slot
            began = env.now
            core = self.cores.get(worker.host) if self.cores else None
            if core is None:
                yield env.timeout(seconds)
            else:
                with core.request() as c:
                    yield c
                    yield env.timeout(seconds)
        if state.spans is not None:
            planned = state.where[i]
            t = began
            for j, part in zip(sh.members[i], parts):
                end = t + part if len(parts) > 1 else env.now
                state.spans.append({"id": STAGE_IDS[j], "stage": _NAMES[j], "worker": self.addresses[w], "start": t,
                                    "end": end, "planned_worker": None if planned is None else self.addresses[planned],
                                    "duration": end - t})
                t = end
        occ = self.occupancy[w] - est
        self.occupancy[w] = occ if occ > 1e-12 else 0.0
        self._observe(sh.names[i], worker.name, seconds, nbytes[i])
        ran_on[i] = w
        self.task_count += 1
        if i == sh.final:
            state.finished.succeed()
        else:
            self._ready(state, i)

    def _observe(self, name, worker, seconds, nbytes):
        model = self.model
        model.observe(name, worker, seconds, nbytes)
        # Dask's own per-prefix average, which the plugin hands the cost model as priors
        total = self._sum[name] = self._sum.get(name, 0.0) + seconds
        count = self._n[name] = self._n.get(name, 0) + 1
        model.priors[name] = total / count


@dataclasses.dataclass
class SimConfig:
    """One simulated configuration: how the service runs and on what."""

    mode: str = "distributed"
    workers: Sequence[SimWorker] = ()
    strategy: str = "dask"
    replicas: int = 1
    cores: dict | None = None       # host -> cores (None: unlimited, one machine per worker)
    max_in_flight: int | None = None  # the server's admission limit: past it, 503 at once
    deadline: float | None = None     # the server's deadline (s): a prediction running longer answers 504 then
    granularity: str = "stage"        # distributed: stockdag.pipeline.granularity the executor builds requests with

    def __post_init__(self):
        check_mode(self.mode)
        if self.mode == "distributed":
            if not self.workers:
                raise ValueError("a distributed configuration needs at least one worker")
            check_strategy(self.strategy)
            if self.granularity not in GRANULARITY_CHOICES:
                raise ValueError(f"unknown granularity {self.granularity!r}; choose one of: {', '.join(GRANULARITY_CHOICES)}")


def simulate(config: SimConfig, costs: Costs, overheads: Overheads, bench: BenchConfig, *,
             mix: RequestMix | None = None, seed: int = 0, trace: bool = False, carry: dict | None = None):
    """Simulate one ``stockdag bench`` run against ``config``; return a :class:`~stockdag.bench.BenchResult`.

    The result has the same records and summary as a measured run (stage traces
    are recorded only with ``trace=True``, for distributed requests, in virtual
    seconds; otherwise the ``trace`` column is empty); ``summary.extra``
    says ``simulated: True`` and counts the simulated tasks. ``carry`` (a dict,
    filled on first use) keeps the strategy object and what the scheduler
    learned from one call to the next, as a server kept up across the load
    levels of a sweep does.
    """
    env = simpy.Environment()
    run = _Run(env, config.mode, config.workers, config.strategy, costs, overheads, config.cores or {},
               config.replicas, seed, config.max_in_flight, trace, carry, config.granularity)
    mix = mix or RequestMix(["X"], seed=bench.seed)
    paths: list[str] = []

    def path(i):
        while i >= len(paths):
            paths.extend(mix.paths(4096))
        return paths[i]

    if bench.loop == "open":
        def source():
            for i, t in enumerate(intended_times(bench)):
                if t > env.now:
                    yield env.timeout(t - env.now)
                env.process(run.request(i, t, path(i), t < bench.warmup))
        env.process(source())
    else:
        counter = iter(range(1 << 62))
        end = bench.warmup + bench.duration
        measured = [0]

        def user():
            while True:
                t = env.now
                if bench.requests is not None:
                    if t >= bench.warmup:
                        if measured[0] >= bench.requests:
                            return
                        measured[0] += 1
                elif t >= end:
                    return
                i = next(counter)
                finished = env.event()
                env.process(run.request(i, t, path(i), t < bench.warmup, finished))
                yield finished
        for _ in range(bench.users):
            env.process(user())
    env.run()
    rows = []
    deadline = config.deadline if config.deadline is not None else math.inf
    for r in run.rows:
        # the server's deadline (504) or the client's timeout, whichever comes first, ends the request then
        # (approximation: the work goes on, and admission counts it until it finishes)
        if r[6] == "" and r[4] - r[3] > min(bench.timeout, deadline):
            late = min(bench.timeout, deadline)
            status, error = (504, "http_504") if deadline < bench.timeout else (0, "timeout")
            end = r[3] + late
            r = (r[0], r[1], r[2], r[3], end, status, error, end - r[2], end - r[3], r[9], None)
        rows.append(r)
    result = result_from(bench, rows, "simulated")
    result.summary.extra.update({"simulated": True, "tasks": run.task_count, "mode": config.mode,
                                 "strategy": config.strategy if config.mode == "distributed" else None})
    return result
