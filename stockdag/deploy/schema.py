"""What every cluster spec holds, whatever its kind: the errors, :class:`WorkerGroup`, :class:`ClusterSpec`,
and the checks every kind's own section uses (:func:`unknown_keys`, :func:`number`).

The kinds (:mod:`.local`, :mod:`.emulated`, :mod:`.ec2`, :mod:`.ssh`) import this module;
:mod:`.spec` imports the kinds to parse a spec. Nothing here knows a kind.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from ..errors import StockdagError


class SpecError(StockdagError, ValueError):
    """A cluster spec is missing, malformed, or has an unknown key or a bad value."""

    http_status = 422


class DeployError(StockdagError):
    """A cluster could not be started, reached or stopped."""

    http_status = 503


class EmulationUnavailable(DeployError):
    """This host cannot emulate heterogeneous machines (no root, or no cgroup CPU controller)."""


@dataclasses.dataclass(frozen=True)
class WorkerGroup:
    """Workers that share one machine type.

    Parameters
    ----------
    name : str
        Lower-case identifier; workers are named ``<name>-<i>`` and get resource ``<name>``.
    count : int
        Number of workers (processes) in the group.
    threads : int
        Threads per worker.
    memory_limit : str
        Memory limit per worker, e.g. ``"2GiB"`` (``"auto"`` lets Dask decide).
    cpu_share : float, optional
        A kind that accepts it (emulated, testbed): CPUs each worker may use (0.5 is half a core).
    link_delay : float
        A kind that accepts it (emulated, testbed): seconds added to every message each worker sends.
    bandwidth : str, optional
        A kind that accepts it (testbed): each worker's link rate both ways, a tc rate such as ``"100mbit"``.
    instance_type : str, optional
        A kind that accepts it (ec2, required there): the instance type of each worker.
    hosts : tuple of str
        A kind that accepts it (ssh, required there): names of the hosts the workers run on, in turn.
    python : str, optional
        A kind that accepts it (ssh): the Python executable on those hosts (else the host's).

    Which of the last six a spec may set is the kind's choice (``Deployment.group_keys``).
    """

    name: str
    count: int = 1
    threads: int = 1
    memory_limit: str = "auto"
    cpu_share: float | None = None
    link_delay: float = 0.0
    instance_type: str | None = None
    hosts: tuple[str, ...] = ()
    python: str | None = None
    bandwidth: str | None = None

    def worker_names(self) -> list[str]:
        return [f"{self.name}-{i}" for i in range(self.count)]

    @property
    def resources(self) -> dict[str, float]:
        return {self.name: float(self.threads)}


@dataclasses.dataclass(frozen=True)
class NoOptions:
    """The options of a kind that has none (no section in its specs)."""


@dataclasses.dataclass(frozen=True)
class ClusterSpec:
    """A validated cluster specification; build it with :func:`stockdag.deploy.load_spec`.

    ``options`` is the kind's own options dataclass (the spec's ``<kind>:`` section).
    """

    name: str
    kind: str
    worker_groups: tuple[WorkerGroup, ...]
    options: Any = NoOptions()
    strategy: str | None = None  # placement strategy registered on the scheduler; None: stockdag.placement.strategy
    source: str | None = None    # file it was read from

    @property
    def n_workers(self) -> int:
        return sum(g.count for g in self.worker_groups)

    def worker_names(self) -> list[str]:
        return [n for g in self.worker_groups for n in g.worker_names()]

    def speeds(self) -> dict[str, float]:
        """Worker name -> relative speed hint (the CPU share; 1.0 where none) for ``stockdag.placement.speeds``."""
        return {n: float(g.cpu_share if g.cpu_share is not None else g.threads)
                for g in self.worker_groups for n in g.worker_names()}

    def to_dict(self) -> dict:
        """The spec as its YAML would say it (the kind's section under the kind's name, when it has one)."""
        d = {"name": self.name, "kind": self.kind,
             "worker_groups": [dataclasses.asdict(g) for g in self.worker_groups]}
        if dataclasses.fields(self.options):
            d[self.kind] = dataclasses.asdict(self.options)
        d["strategy"] = self.strategy
        return d


def unknown_keys(where: str, keys, allowed) -> None:
    """Refuse keys not in ``allowed``, naming them and what is allowed (a typo never falls back to a default)."""
    extra = sorted(set(keys) - set(allowed))
    if extra:
        raise SpecError(f"{where}: unknown key{'s' if len(extra) > 1 else ''} {', '.join(map(repr, extra))}; "
                        f"allowed: {', '.join(sorted(allowed))}")


def number(where: str, value, *, kind=float, low=None, high=None, low_open=False) -> Any:
    """``value`` as a ``kind`` (float or int) within the bounds, else a :class:`SpecError` saying why."""
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        raise SpecError(f"{where}: expected {'a number' if kind is float else 'an integer'}, got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        raise SpecError(f"{where}: must be {'>' if low_open else '>='} {low}, got {value!r}")
    if high is not None and value > high:
        raise SpecError(f"{where}: must be <= {high}, got {value!r}")
    return kind(value)
