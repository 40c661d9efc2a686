"""The ``dask.delayed`` graph of one request, its task groups (granularity), and the sequential runner.

:func:`~stockdag.pipeline.run_stages` runs the same stage functions one after another without Dask: the centralized baseline.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dask.base import annotate
from dask.delayed import Delayed, delayed

from .. import config
from ..errors import InvalidRequest
from .granularity import GRANULARITIES, GRANULARITY_CHOICES, resolve_granularity  # noqa: F401  (re-exported)
from .request import Request
from .spec import DEFAULT as DEFAULT_PIPELINE
from .spec import PipelineSpec
from .table import (
    FINAL,
    STAGES,
    Stage,
    final_id,
    stage_table,
    task_key,
)
from .trace import Traced, run_traced


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
        only = next(iter(preds[s.id])) if len(preds[s.id]) == 1 else None  # its one predecessor
        if only is not None and len(succs[only]) == 1:
            head[s.id] = head[only]
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
    """The delayed graph of one request; computing it gives a :class:`~stockdag.pipeline.trace.Traced` Prediction.

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
            with annotate(stockdag={"stage": stage.id, "name": stage.name, "request": rid, "symbol": request.symbol}):
                nodes[stage.id] = delayed(run_traced, pure=False)(
                    stage.id, stage.name, stage.func, *args, dask_key_name=task_key(stage, rid)
                )
        return nodes[final]
    if granularity == "request":
        key, func, annotations = request_task(request)
        with annotate(stockdag=annotations):
            whole: Delayed = delayed(func, pure=False)(request, dask_key_name=key)
        return whole
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
        with annotate(stockdag={"stage": g.code, "name": g.name, "request": rid, "symbol": request.symbol}):
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
