"""The scheduler plugin that applies a placement strategy to Dask's scheduler.

It restricts the new tasks of each stockdag request in ``update_graph``, learns
stage costs in ``transition``, re-plans in ``remove_worker`` and records its
plans and errors. How and why: :doc:`/guides/placement` (How the plugin works).
"""
from __future__ import annotations

import logging
import time
import traceback
from collections import OrderedDict, deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from distributed.diagnostics.plugin import SchedulerPlugin

from .. import config
from .base import ANNOTATION, Plan, TaskInfo, WorkerInfo, describe
from .costs import CostModel
from .registry import make_strategy

if TYPE_CHECKING:
    from dask.typing import Key
    from distributed import Scheduler
    from distributed.scheduler import TaskState, TaskStateState

logger = logging.getLogger(__name__)

NAME = "stockdag-placement"

#: states of a task that has not started yet, whose restrictions may still change
_NOT_STARTED = frozenset({"released", "waiting", "no-worker"})


class _Live:
    """What the plugin remembers about one task it saw, until the scheduler forgets it."""

    __slots__ = ("stage", "group", "address", "pending")

    def __init__(self, stage: str, group: str, address: str | None, pending: float):
        self.stage = stage
        self.group = group
        #: the worker the task is restricted to (None: unrestricted)
        self.address = address
        #: expected seconds of work planned on ``address`` (or, address None, left to Dask) and not started yet
        self.pending = pending


class PlacementPlugin(SchedulerPlugin):
    """Places each request's tasks with one strategy from :data:`~stockdag.placement.registry.STRATEGIES`.

    Parameters
    ----------
    strategy:
        A strategy name. Default ``stockdag.placement.strategy``.
    history:
        Plans kept for this many recent requests. Default ``stockdag.placement.history``.
    alpha, speeds, bandwidth, latency:
        Passed to the :class:`~stockdag.placement.costs.CostModel`.
    **options:
        Options of the strategy (e.g. ``seed`` for ``random``, ``pinned`` for
        ``pinned``, ``loose`` for any).

    Notes
    -----
    Register it with :func:`stockdag.placement.register` (``Client.register_plugin``)
    or load it on a remote scheduler with ``--preload stockdag.placement.preload``.
    Extend the plugin by adding strategies, not by subclassing it.
    """

    name = NAME

    def __init__(
        self,
        strategy: str | None = None,
        *,
        history: int | None = None,
        alpha: float | None = None,
        speeds: dict[str, float] | None = None,
        bandwidth: float | None = None,
        latency: float | None = None,
        **options: Any,
    ):
        self.strategy_name = config.get("placement.strategy", override_with=strategy)
        self.strategy = make_strategy(self.strategy_name, **options)
        self.options = dict(options)
        self.history = int(config.get("placement.history", override_with=history))
        self.costs = CostModel(alpha=alpha, speeds=speeds, bandwidth=bandwidth, latency=latency)
        #: request id -> {key: planned address or None}, most recent last
        self.plans: OrderedDict[str, Plan] = OrderedDict()
        #: planning failures: dicts with hook, stimulus_id, error, traceback
        self.errors: deque[dict[str, Any]] = deque(maxlen=100)
        #: re-plans after a worker left: dicts with key, old, new, worker, stimulus_id
        self.replans: deque[dict[str, Any]] = deque(maxlen=1000)
        #: notes about plans that could not be followed as configured (e.g. a pinned worker absent)
        self.warnings: deque[str] = deque(maxlen=100)
        #: graphs and tasks seen, tasks restricted, seconds spent inside update_graph
        self.stats = {"graphs": 0, "tasks": 0, "restricted": 0, "seconds": 0.0}
        self._scheduler: Scheduler | None = None
        # tasks alive on the scheduler that this plugin saw
        self._live: dict[Key, _Live] = {}
        # worker address -> keys restricted to it by this plugin (for remove_worker)
        self._restricted: dict[str, set[Key]] = {}
        # worker address -> expected seconds planned there and not started yet
        self._pending: dict[str, float] = {}
        # expected seconds of work a plan left to Dask (no restriction) and not started yet: it will land on
        # some worker, so every worker's occupancy counts its share (adaptive under load plans so)
        self._unplaced = 0.0

    def __repr__(self) -> str:
        return f"<PlacementPlugin {self.strategy_name!r}: {len(self.plans)} plans, {len(self.errors)} errors>"

    # ------------------------------------------------------------------ queries
    def plan_for(self, request_id: str) -> Plan:
        """``{task key: planned worker address or None}`` of a recent request ({} if unknown).

        The executor calls this on the scheduler after the request completed.
        A task re-planned after a worker left shows its latest plan.
        """
        return dict(self.plans.get(request_id, {}))

    def pending(self) -> dict[str, float]:
        """Worker address -> expected seconds of planned work that has not started."""
        return {a: max(v, 0.0) for a, v in self._pending.items()}

    def unplaced(self) -> float:
        """Expected seconds of work that plans left to Dask and that has not started."""
        return max(self._unplaced, 0.0)

    def summary(self) -> dict[str, Any]:
        """Strategy, counters, errors and learned costs as plain data."""
        return {
            "strategy": self.strategy_name,
            "options": dict(self.options),
            "loose": self.strategy.loose,
            "stats": dict(self.stats),
            "errors": list(self.errors),
            "replans": len(self.replans),
            "warnings": list(self.warnings),
            "pending": self.pending(),
            "unplaced": self.unplaced(),
            "costs": self.costs.snapshot(),
        }

    # ------------------------------------------------------------------ hooks
    async def start(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler
        previous = scheduler.plugins.get(self.name)  # a replacing register calls start() before the swap
        if isinstance(previous, PlacementPlugin) and previous is not self:
            self._adopt(previous)
        from .dashboard import add_routes  # the /stockdag page on the scheduler's dashboard

        add_routes(scheduler, self.name)

    def restart(self, scheduler: Scheduler) -> None:
        self._live.clear()
        self._restricted.clear()
        self._pending.clear()
        self._unplaced = 0.0

    def update_graph(self, scheduler: Scheduler, *, client: str, keys: set[Key], tasks: list[Key],
                     annotations: dict[str, dict[Key, Any]], priority: dict[Key, tuple[int | float, ...]],
                     stimulus_id: str, **kwargs: Any) -> None:
        self._scheduler = scheduler
        t0 = time.perf_counter()
        try:
            self._plan_new_tasks(scheduler, tasks, stimulus_id)
        except Exception as exc:  # the scheduler would log and swallow it; keep it visible
            self._record_error("update_graph", stimulus_id, exc)
        finally:
            self.stats["graphs"] += 1
            self.stats["tasks"] += len(tasks)
            self.stats["seconds"] += time.perf_counter() - t0

    def transition(self, key: Key, start: str, finish: str, *args: Any, stimulus_id: str, **kwargs: Any) -> None:
        # called for every transition of every task: return early when there is nothing to do
        if start == "processing":
            if finish == "memory":
                try:
                    self._learn(key, kwargs)
                except Exception as exc:  # see update_graph
                    self._record_error("transition", stimulus_id, exc)
            return
        if finish == "processing" or finish == "forgotten" or finish == "erred":
            live = self._live.get(key)
            if live is None:
                return
            if live.pending:
                if live.address is not None:
                    self._pending[live.address] = self._pending.get(live.address, 0.0) - live.pending
                else:
                    self._unplaced -= live.pending
                live.pending = 0.0
            if finish == "forgotten":
                del self._live[key]
                if live.address is not None:
                    restricted = self._restricted.get(live.address)
                    if restricted is not None:
                        restricted.discard(key)

    def remove_worker(self, scheduler: Scheduler, worker: str, *, stimulus_id: str, **kwargs: Any) -> None:
        self._pending.pop(worker, None)
        try:
            self._replan_after_loss(scheduler, worker, stimulus_id)
        except Exception as exc:  # see update_graph
            self._record_error("remove_worker", stimulus_id, exc)

    def release(self, scheduler: Scheduler, stimulus_id: str) -> int:
        """Lift the restrictions this plugin set on tasks that have not started; the number lifted.

        Call it before removing the plugin (:func:`stockdag.placement.unregister`
        does): nothing re-plans a restricted task once the plugin is gone, so a
        task whose worker then left would wait in ``no-worker`` until its deadline.
        """
        recommendations: dict[Key, TaskStateState] = {}
        lifted = 0
        for address, keys in self._restricted.items():
            for key in keys:
                ts = scheduler.tasks.get(key)
                if ts is None or ts.state not in _NOT_STARTED or ts.worker_restrictions != {address}:
                    continue  # started, gone, or restricted since by someone else: not ours to lift
                ts.worker_restrictions = None
                ts.loose_restrictions = False
                lifted += 1
                if ts.state == "no-worker":
                    recommendations[key] = "processing"
        self._restricted.clear()
        self._pending.clear()
        self._unplaced = 0.0
        for live in self._live.values():
            live.address, live.pending = None, 0.0
        if recommendations:
            scheduler.transitions(recommendations, stimulus_id=stimulus_id)
        return lifted

    # ------------------------------------------------------------------ internals
    def _adopt(self, previous: PlacementPlugin) -> None:
        # a replaced plugin gets no more hooks: take over the tasks it restricted, so that this one
        # re-plans them if their worker leaves, and its planned-but-not-started work keeps counting
        self._live, previous._live = previous._live, {}
        self._restricted, previous._restricted = previous._restricted, {}
        self._pending, previous._pending = previous._pending, {}
        self._unplaced, previous._unplaced = previous._unplaced, 0.0

    def _record_error(self, hook: str, stimulus_id: str, exc: BaseException) -> None:
        logger.exception("stockdag placement (%s) failed in %s", self.strategy_name, hook)
        self.errors.append({
            "hook": hook,
            "stimulus_id": stimulus_id,
            "error": repr(exc),
            "traceback": "".join(traceback.format_exception(exc)),
        })

    def _workers(self, scheduler: Scheduler) -> list[WorkerInfo]:
        pending = self._pending
        running = scheduler.running
        # work left to Dask lands wherever Dask puts it: each worker counts its share, by threads
        per_thread = self.unplaced() / max(sum(ws.nthreads for ws in running), 1)
        return sorted(
            (
                WorkerInfo(
                    ws.address, str(ws.name), ws.nthreads,
                    ws.occupancy + max(pending.get(ws.address, 0.0), 0.0) + per_thread * ws.nthreads,
                    ws.memory_limit or 0,
                )
                for ws in running
            ),
            key=lambda w: (w.name, w.address),
        )

    def _refresh_costs(self, scheduler: Scheduler, stages: Iterable[str]) -> None:
        if not self.costs.fixed_bandwidth:
            self.costs.bandwidth = float(scheduler.bandwidth) or self.costs.bandwidth
        prefixes = scheduler.task_prefixes
        priors = self.costs.priors
        for stage in stages:
            tp = prefixes.get(stage)
            if tp is not None and tp.duration_average >= 0:
                priors[stage] = tp.duration_average

    @staticmethod
    def _groups(task_states: Iterable[TaskState]) -> dict[str, list[TaskInfo]]:
        """TaskInfos grouped by request; tasks without a request id are left out (Dask places them)."""
        described = {ts.key: describe(ts.key, ts.annotations) for ts in task_states}
        groups: dict[str, list[TaskInfo]] = {}
        for ts in task_states:
            stage, request, code, symbol = described[ts.key]
            if request is None:
                continue
            deps = tuple(d.key for d in ts.dependencies if d.key in described and described[d.key][1] == request)
            groups.setdefault(request, []).append(TaskInfo(ts.key, stage, request, code, symbol, deps))
        return groups

    def _remember(self, group: str, plan: Plan) -> None:
        record = self.plans.get(group)
        if record is None:
            record = self.plans[group] = {}
        else:
            self.plans.move_to_end(group)
        record.update(plan)
        while len(self.plans) > self.history:
            self.plans.popitem(last=False)

    def _apply(self, scheduler: Scheduler, group: str, tasks: list[TaskInfo], plan: Plan,
               workers: list[WorkerInfo]) -> Plan:
        """Restrict each task as planned; keep the bookkeeping; return the plan as applied."""
        names = {w.address: w.name for w in workers}
        loose = self.strategy.loose
        applied: Plan = {}
        for t in tasks:
            ts = scheduler.tasks[t.key]
            address = plan.get(t.key)
            if address is not None and address not in names:
                raise ValueError(f"strategy {self.strategy_name!r} planned {t.key!r} on unknown worker {address!r}")
            old = self._live.get(t.key)
            if old is not None:  # re-planning: undo the old plan's bookkeeping
                if old.address is not None and old.address in self._restricted:
                    self._restricted[old.address].discard(t.key)
                if old.pending and old.address in self._pending:
                    self._pending[old.address] -= old.pending
                elif old.pending and old.address is None:
                    self._unplaced -= old.pending
            pending = 0.0
            if address is None:
                ts.worker_restrictions = None
                ts.loose_restrictions = False
                # Dask will put it on one of these workers: count its expected cost there (their mean)
                pending = sum(self.costs.estimates(t.stage, names.values())) / max(len(names), 1)
                self._unplaced += pending
            else:
                ts.worker_restrictions = {address}
                ts.loose_restrictions = loose
                self._restricted.setdefault(address, set()).add(t.key)
                pending = self.costs.estimate(t.stage, names[address]) / max(scheduler.workers[address].nthreads, 1)
                self._pending[address] = self._pending.get(address, 0.0) + pending
                self.stats["restricted"] += 1
            self._live[t.key] = _Live(t.stage, group, address, pending)
            ann = ts.annotations or {}
            # a copy: annotations may be shared between the tasks of a graph
            ts.annotations = {**ann, ANNOTATION: {**(ann.get(ANNOTATION) or {}), "planned": address}}
            applied[t.key] = address
        return applied

    def _plan_new_tasks(self, scheduler: Scheduler, keys: Iterable[Key], stimulus_id: str) -> None:
        all_tasks = scheduler.tasks
        new = []
        for k in keys:
            ts = all_tasks.get(k)
            # only tasks the scheduler has not started on; leave the user's own restrictions alone
            if (
                ts is not None
                and ts.state == "released"
                and ts.run_spec is not None
                and not ts.worker_restrictions
                and not ts.host_restrictions
                and not ts.resource_restrictions
            ):
                new.append(ts)
        if not new:
            return
        new.sort(key=lambda ts: ts.priority or ())
        groups = self._groups(new)
        workers = self._workers(scheduler)
        if not self.strategy.plans or not workers:
            for group, tasks in groups.items():
                self._remember(group, {t.key: None for t in tasks})
                for t in tasks:
                    self._live[t.key] = _Live(t.stage, group, None, 0.0)
            return
        self._refresh_costs(scheduler, {t.stage for tasks in groups.values() for t in tasks})
        for group, tasks in groups.items():
            plan = self.strategy.place(tasks, workers, self.costs)
            self._remember(group, self._apply(scheduler, group, tasks, plan, workers))
        self._note_unavailable()

    def _note_unavailable(self) -> None:
        self.warnings.extend(self.strategy.drain_warnings())

    def _learn(self, key: Key, msg: dict[str, Any]) -> None:
        live = self._live.get(key)
        scheduler = self._scheduler
        if live is None or scheduler is None:  # not a stockdag task
            return
        ws = scheduler.workers.get(str(msg.get("worker")))
        if ws is None:
            return
        seconds = 0.0
        for ss in msg.get("startstops") or ():
            if ss.get("action") == "compute":
                seconds += ss["stop"] - ss["start"]
        self.costs.observe(live.stage, str(ws.name), seconds, msg.get("nbytes"))

    def _replan_after_loss(self, scheduler: Scheduler, address: str, stimulus_id: str) -> None:
        keys = self._restricted.pop(address, None)
        if not keys:
            return
        tasks = scheduler.tasks
        groups = set()
        for k in keys:
            live = self._live.get(k)
            ts = tasks.get(k)
            if live is not None and ts is not None and ts.state in _NOT_STARTED:
                groups.add(live.group)
                live.pending = 0.0  # that worker's pending count is gone with it
        if not groups:
            return
        # every not-yet-started task of an affected request is re-planned together
        # (a heft schedule is a whole); tasks already running stay where they are
        pending: dict[str, list[TaskState]] = {}
        for k, live in self._live.items():
            if live.group in groups:
                ts = tasks.get(k)
                if ts is not None and ts.state in _NOT_STARTED:
                    pending.setdefault(live.group, []).append(ts)
        workers = self._workers(scheduler)
        recommendations: dict[Key, TaskStateState] = {}
        for group, task_states in pending.items():
            task_states.sort(key=lambda ts: ts.priority or ())
            infos = self._groups(task_states)[group]
            old = {t.key: self._live[t.key].address for t in infos}
            if workers:
                plan = self.strategy.place(infos, workers, self.costs)
            else:  # nobody left: whichever worker joins next takes them
                plan = {t.key: None for t in infos}
            applied = self._apply(scheduler, group, infos, plan, workers)
            self._remember(group, applied)
            for k, new in applied.items():
                if old[k] != new:
                    self.replans.append(
                        {"key": k, "old": old[k], "new": new, "worker": address, "stimulus_id": stimulus_id}
                    )
            # the scheduler already sent the ones restricted to the lost worker to no-worker
            recommendations.update({ts.key: "processing" for ts in task_states if ts.state == "no-worker"})
        self._note_unavailable()
        if recommendations:
            scheduler.transitions(recommendations, stimulus_id=stimulus_id)
