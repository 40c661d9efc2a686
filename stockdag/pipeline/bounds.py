"""What a pipeline's stage DAG allows: layers, width, work, critical path and the best schedule of given stage costs.

The one owner of these bounds, for any pipeline spec's table; the overhead tool, the
report and the simulator all read them from here. See :doc:`/research/methodology`.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from .table import STAGES, Stage, spec_for_ids, stage_table

#: most stage-to-worker assignments :func:`best_schedule` tries before it gives up (returns None)
MAX_ASSIGNMENTS = 300_000

Costs = Mapping[str, float] | Sequence[float]


class CriticalPath(NamedTuple):
    """The longest path through the stage DAG: its length in seconds and its stage ids, first to last."""

    seconds: float
    path: list[str]


def table_for(costs: Costs | Iterable[str], stages: Sequence[Stage] | None = None) -> Sequence[Stage]:
    """``stages`` when given; else the table of the pipeline whose stages are the keys of ``costs``.

    A sequence of numbers (no ids) is read against the default table.
    """
    if stages is not None:
        return stages
    if isinstance(costs, Mapping):
        return stage_table(spec_for_ids(costs))
    ids = list(costs)
    if ids and not isinstance(ids[0], str):
        return STAGES
    return stage_table(spec_for_ids(str(i) for i in ids))


def _by_id(costs: Costs, stages: Sequence[Stage]) -> dict[str, float]:
    """Seconds per stage id; a sequence is in the order of ``stages``, a missing id costs nothing."""
    if isinstance(costs, Mapping):
        return {s.id: float(costs.get(s.id, 0.0)) for s in stages}
    if len(costs) != len(stages):
        raise ValueError(f"{len(costs)} stage costs for a table of {len(stages)} stages")
    return {s.id: float(c) for s, c in zip(stages, costs)}


def stage_layers(stages: Sequence[Stage] | None = None) -> dict[str, int]:
    """stage id -> its layer in the DAG: 0 for stages without inputs, else one more than its deepest input.

    Stages of one layer can run at once; the largest layer is the pipeline's parallel width.
    """
    layer: dict[str, int] = {}
    for stage in stages or STAGES:  # the table lists every stage after its inputs
        layer[stage.id] = 1 + max((layer[i] for i in stage.inputs), default=-1)
    return layer


def width(stages: Sequence[Stage] | None = None) -> int:
    """Most stages that can run at once: the size of the largest layer (the default table's when None)."""
    counts: dict[int, int] = {}
    for v in stage_layers(stages).values():
        counts[v] = counts.get(v, 0) + 1
    return max(counts.values())


def work(costs: Costs, stages: Sequence[Stage] | None = None) -> float:
    """Seconds of stage work in one request: the sum over the table's stages."""
    return sum(_by_id(costs, table_for(costs, stages)).values())


def critical_path(costs: Costs, stages: Sequence[Stage] | None = None) -> CriticalPath:
    """The longest path through the stage DAG with these per-stage seconds.

    ``costs`` maps stage ids to seconds (the table is then the pipeline of those
    ids unless ``stages`` is given), or lists seconds in the order of ``stages``
    (the default table when None). Ties go to the later input, so a zero-cost
    stage (C6) still shows on the path.
    """
    table = table_for(costs, stages)
    seconds = _by_id(costs, table)
    finish: dict[str, float] = {}
    via: dict[str, str | None] = {}
    for stage in table:
        before = max(reversed(stage.inputs), key=lambda i: finish[i]) if stage.inputs else None
        finish[stage.id] = (finish[before] if before else 0.0) + seconds[stage.id]
        via[stage.id] = before
    end = table[-1].id  # the answer: every stage leads to it
    path: list[str] = []
    node: str | None = end
    while node:
        path.append(node)
        node = via[node]
    return CriticalPath(finish[end], path[::-1])


def best_schedule(costs: Costs, workers: int, stages: Sequence[Stage] | None = None) -> float | None:
    """The shortest schedule of these stages on ``workers`` one-thread workers with no overhead at all.

    Every assignment of stages to workers is tried (the first stage fixed, as
    workers are alike); each is list-scheduled in table order, a stage starting
    when its inputs are done and its worker is free. That is the latency a perfect
    placement reaches with free scheduling and transfers. It is never below
    ``max(critical path, work / workers)`` and lies above it when the stages do not
    split evenly over the workers (two big models on two workers, say). None when
    there are more than :data:`MAX_ASSIGNMENTS` assignments.
    """
    table = table_for(costs, stages)
    seconds = _by_id(costs, table)
    if workers <= 1:
        return sum(seconds.values())
    if workers ** (len(table) - 1) > MAX_ASSIGNMENTS:
        return None
    best = float("inf")
    for rest in itertools.product(range(workers), repeat=len(table) - 1):
        free = [0.0] * workers
        finish: dict[str, float] = {}
        for s, w in zip(table, (0, *rest)):
            start = max(free[w], max((finish[i] for i in s.inputs), default=0.0))
            finish[s.id] = free[w] = start + seconds[s.id]
            if finish[s.id] >= best:
                break
        else:
            best = max(finish.values())
    return best
