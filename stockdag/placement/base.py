"""What a placement strategy sees, and the base class every strategy extends.

A strategy decides, for the tasks of one request, which worker each should
run on. It sees plain values only (:class:`TaskInfo`, :class:`WorkerInfo` and
a cost model), never the scheduler, so every decision is unit-tested without
a cluster; :class:`~stockdag.placement.plugin.PlacementPlugin` adapts the
scheduler's state to these values and the decision back to task restrictions.
"""
from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from dask.utils import key_split

from .. import config

if TYPE_CHECKING:
    from dask.typing import Key

    from .costs import CostModel

#: The annotation every stockdag task carries (see ``stockdag.pipeline``).
ANNOTATION = "stockdag"

#: task key -> the address of the worker to run it, None to leave it to Dask
Plan = dict["Key", "str | None"]


@dataclass(frozen=True, slots=True)
class TaskInfo:
    """One task as a strategy sees it.

    ``stage`` is the stage name (``make_features``), or the key prefix for a
    graph without stockdag annotations; ``code`` is the stage code (``C3``)
    when annotated. ``dependencies`` lists the keys of the task's inputs that
    belong to the same request (inputs already computed are not listed).
    """

    key: Key
    stage: str
    request: str | None = None
    code: str | None = None
    symbol: str | None = None
    dependencies: tuple[Key, ...] = ()


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """One running worker: ``name`` is its stable identity, ``address`` where it is now.

    ``occupancy`` is the expected seconds of work already queued on the worker,
    summed over its threads: the scheduler's estimate for the tasks assigned to
    it plus the plugin's for tasks planned there that have not started, plus
    its share (by threads) of the tasks plans left to Dask that have not started.
    """

    address: str
    name: str
    nthreads: int = 1
    occupancy: float = 0.0
    memory_limit: int = 0


def describe(key: Hashable, annotations: Mapping[str, Any] | None = None) -> tuple[str, str | None, str | None, str | None]:
    """``(stage, request, code, symbol)`` of a task, from its ``stockdag`` annotation.

    Only the annotation makes a task a stockdag task (``request`` not None):
    ``Client.submit`` and ``Client.map`` name tasks ``<function>-<32 hex>`` too,
    so a key's shape proves nothing. A task without the annotation gets its
    :func:`dask.utils.key_split` prefix as the stage and no request.
    """
    ann = annotations.get(ANNOTATION) if annotations else None
    ann = ann if isinstance(ann, Mapping) else {}
    stage, request = ann.get("name"), ann.get("request")
    if not request:
        return key_split(key), None, None, None
    return str(stage or key_split(key)), str(request), ann.get("stage"), ann.get("symbol")

class Strategy:
    """Base class of placement strategies.

    A strategy maps the tasks of one request to worker addresses (or None:
    leave that task to Dask). Extend it by subclassing, setting ``name``,
    implementing :meth:`place` as a function of its arguments (plus explicit,
    seeded state such as a request counter), documenting its source, and
    adding the class to :data:`stockdag.placement.registry.STRATEGIES`.

    Parameters
    ----------
    loose:
        If True the plan is a preference: Dask may run a task elsewhere (work
        stealing, or when the planned worker is gone). Default:
        ``stockdag.placement.loose``.
    """

    name: ClassVar[str] = ""

    def __init__(self, *, loose: bool | None = None):
        self.loose = bool(config.get("placement.loose", override_with=loose))

    @property
    def plans(self) -> bool:
        """Whether this strategy restricts tasks at all (``dask`` does not)."""
        return True

    def place(self, tasks: Sequence[TaskInfo], workers: Sequence[WorkerInfo], costs: CostModel) -> Plan:
        """Return ``{task key: worker address or None}`` for ``tasks``.

        ``tasks`` are the not-yet-run tasks of one request in Dask's priority
        order (a topological order); ``workers`` are the running workers sorted
        by name, never empty; ``costs`` holds what has been observed so far.
        """
        raise NotImplementedError

    def drain_warnings(self) -> list[str]:
        """Notes about plans that could not follow the configuration since the last call, then forgets them.

        The plugin records them in :attr:`PlacementPlugin.warnings` after each
        plan; a strategy with a configuration that can be unmet (``pinned``:
        a worker that is not running) overrides this.
        """
        return []

    def __repr__(self) -> str:
        return f"{type(self).__name__}(loose={self.loose})"

