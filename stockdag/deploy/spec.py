"""Cluster specifications: a YAML file that says what to start, validated before anything starts.

A spec names a ``kind`` (``local``, ``emulated`` or ``ec2``) and one or more
*worker groups*. Every worker of group ``big`` is named ``big-0``, ``big-1``, ...
and carries the Dask resource ``big`` (one unit per thread), so the placement
strategies (``pinned``, ``heft``) can address a group by worker name or resource.

Example (``experiments/clusters/emulated-hetero.yaml``)::

    name: emulated-hetero
    kind: emulated
    worker_groups:
      - {name: fast, count: 1, threads: 1, memory_limit: 2GiB, cpu_share: 1.0}
      - {name: slow, count: 1, threads: 1, memory_limit: 2GiB, cpu_share: 0.5, link_delay: 0.02}

To extend: add a field to :class:`WorkerGroup` or :class:`EC2Options` (a
dataclass field with a default) and check its value in ``_validate``; unknown
keys are rejected by name, so a typo never silently falls back to a default.
"""
from __future__ import annotations

import dataclasses
import os
import re
from typing import Any

import yaml
from dask.utils import parse_bytes

from ..errors import StockdagError

KINDS = ("local", "emulated", "ec2")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
_CLUSTER_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")


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
        emulated only: CPUs each worker may use (0.5 is half a core), enforced by a cgroup quota.
    link_delay : float
        emulated only: seconds added to every message each worker sends.
    instance_type : str, optional
        ec2 only (required there): the EC2 instance type of each worker.
    """

    name: str
    count: int = 1
    threads: int = 1
    memory_limit: str = "auto"
    cpu_share: float | None = None
    link_delay: float = 0.0
    instance_type: str | None = None

    def worker_names(self) -> list[str]:
        return [f"{self.name}-{i}" for i in range(self.count)]

    @property
    def resources(self) -> dict[str, float]:
        return {self.name: float(self.threads)}


@dataclasses.dataclass(frozen=True)
class EC2Options:
    """EC2 settings (``ec2:`` section of a spec); see ``experiments/clusters/ec2-small.yaml``.

    ``ami`` and ``security_groups`` are required: dask-cloudprovider's default
    AMI lookup needs the real cloud and its default security-group creation
    fails in 2025.9 (dask-cloudprovider issue #481).
    """

    region: str = "us-east-1"
    ami: str = ""
    security_groups: tuple[str, ...] = ()
    scheduler_instance_type: str = "t3.small"
    iam_instance_profile: str | None = None   # instance profile name: how instances get credentials
    key_name: str | None = None
    subnet_id: str | None = None
    vpc: str | None = None
    docker_image: str | None = None           # None pins ghcr.io/dask/dask:<dask version>-py<python version>
    security: bool = True                     # TLS between client, scheduler and workers
    auto_shutdown: bool = True
    bootstrap: bool = True                    # instances install Docker at boot (set False for an AMI that has it)
    filesystem_size: int = 40                 # GB of root volume
    max_hours: float = 4.0                    # `plan` warns past this; `up` passes it on as a dashboard note only
    client_cidr: str | None = None            # who may reach the scheduler ports; None: this machine's address /32


@dataclasses.dataclass(frozen=True)
class ClusterSpec:
    """A validated cluster specification; build it with :func:`load_spec`."""

    name: str
    kind: str
    worker_groups: tuple[WorkerGroup, ...]
    ec2: EC2Options | None = None
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
        d = dataclasses.asdict(self)
        d.pop("source")
        return d


_GROUP_FIELDS = {f.name: f for f in dataclasses.fields(WorkerGroup)}
_EC2_FIELDS = {f.name: f for f in dataclasses.fields(EC2Options)}
_TOP_KEYS = {"name", "kind", "worker_groups", "ec2", "strategy"}


def _unknown(where: str, keys, allowed) -> None:
    extra = sorted(set(keys) - set(allowed))
    if extra:
        raise SpecError(f"{where}: unknown key{'s' if len(extra) > 1 else ''} {', '.join(map(repr, extra))}; "
                        f"allowed: {', '.join(sorted(allowed))}")


def _number(where: str, value, *, kind=float, low=None, high=None, low_open=False) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
        raise SpecError(f"{where}: expected {'a number' if kind is float else 'an integer'}, got {value!r}")
    if low is not None and (value <= low if low_open else value < low):
        raise SpecError(f"{where}: must be {'>' if low_open else '>='} {low}, got {value!r}")
    if high is not None and value > high:
        raise SpecError(f"{where}: must be <= {high}, got {value!r}")
    return kind(value)


def _group(kind: str, i: int, raw) -> WorkerGroup:
    where = f"worker_groups[{i}]"
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: expected a mapping with name, count, threads, ..., got {raw!r}")
    name = raw.get("name")
    if isinstance(name, str) and name:
        where = f"worker group {name!r}"
    _unknown(where, raw, _GROUP_FIELDS)
    if not isinstance(name, str) or not _NAME.match(name):
        raise SpecError(f"{where}: name: expected a lower-case identifier (a-z, 0-9, _; starts with a letter), got {name!r}")
    count = _number(f"{where}: count", raw.get("count", 1), kind=int, low=1, high=256)
    threads = _number(f"{where}: threads", raw.get("threads", 1), kind=int, low=1, high=256)
    memory_limit = raw.get("memory_limit", "auto")
    if memory_limit != "auto":
        try:
            if parse_bytes(memory_limit) <= 0:
                raise ValueError
        except (ValueError, TypeError):
            raise SpecError(f"{where}: memory_limit must be a size such as '2GiB' or 'auto', got {memory_limit!r}") from None
        memory_limit = str(memory_limit)
    cpu_share = raw.get("cpu_share")
    link_delay = raw.get("link_delay", 0.0)
    instance_type = raw.get("instance_type")
    if kind != "emulated":
        for key in ("cpu_share", "link_delay"):
            if key in raw:
                raise SpecError(f"{where}: {key} applies only to kind emulated (this spec is {kind})")
    else:
        if cpu_share is not None:
            cpu_share = _number(f"{where}: cpu_share", cpu_share, low=0.01, high=float(os.cpu_count() or 1) * 4)
        link_delay = _number(f"{where}: link_delay (seconds)", link_delay, low=0.0, high=10.0)
    if kind == "ec2":
        if not isinstance(instance_type, str) or not re.match(r"^[a-z0-9-]+\.[a-z0-9-]+$", instance_type):
            raise SpecError(f"{where}: instance_type is required for ec2 (e.g. t3.small), got {instance_type!r}")
    elif instance_type is not None:
        raise SpecError(f"{where}: instance_type applies only to kind ec2 (this spec is {kind})")
    return WorkerGroup(name, count, threads, memory_limit, cpu_share, float(link_delay), instance_type)


AMI_ID = re.compile(r"^ami-[0-9a-f]{8,17}$")  # what EC2 accepts (the CLI checks --ami with it too)
SECURITY_GROUP_ID = re.compile(r"^sg-[0-9a-f]{8,17}$")


def _ec2(raw) -> EC2Options:
    if not isinstance(raw, dict):
        raise SpecError("ec2: a kind ec2 spec needs an ec2 section with at least ami and security_groups")
    _unknown("ec2", raw, _EC2_FIELDS)
    vals = dict(raw)
    if not isinstance(vals.get("ami"), str) or not AMI_ID.match(vals.get("ami", "")):
        raise SpecError(f"ec2.ami: required, an AMI id such as ami-0123456789abcdef0, got {vals.get('ami')!r} "
                        "(dask-cloudprovider's default AMI lookup needs the real cloud)")
    sgs = vals.get("security_groups")
    if isinstance(sgs, str):
        sgs = [sgs]
    if not sgs or not all(isinstance(s, str) and SECURITY_GROUP_ID.match(s) for s in sgs):
        raise SpecError(f"ec2.security_groups: required, a list of security group ids (sg-...), got {vals.get('security_groups')!r} "
                        "(dask-cloudprovider 2025.9 fails to create a default group, upstream issue #481)")
    vals["security_groups"] = tuple(sgs)
    for key in ("security", "auto_shutdown", "bootstrap"):
        if key in vals and not isinstance(vals[key], bool):
            raise SpecError(f"ec2.{key}: expected true or false, got {vals[key]!r}")
    for key in ("region", "scheduler_instance_type", "iam_instance_profile", "key_name", "subnet_id", "vpc",
                "docker_image", "client_cidr"):
        if key in vals and vals[key] is not None and not isinstance(vals[key], str):
            raise SpecError(f"ec2.{key}: expected a string, got {vals[key]!r}")
    if "filesystem_size" in vals:
        _number("ec2.filesystem_size", vals["filesystem_size"], kind=int, low=8, high=16384)
    if "max_hours" in vals:
        vals["max_hours"] = _number("ec2.max_hours", vals["max_hours"], low=0.0, low_open=True)
    return EC2Options(**vals)


def parse_spec(raw, source: str | None = None) -> ClusterSpec:
    """Validate a spec given as a mapping (the parsed YAML); raise :class:`SpecError` naming the bad key."""
    if not isinstance(raw, dict):
        raise SpecError(f"a cluster spec must be a mapping with kind and worker_groups, got {type(raw).__name__}")
    _unknown("spec", raw, _TOP_KEYS)
    kind = raw.get("kind")
    if kind not in KINDS:
        raise SpecError(f"kind: expected one of {', '.join(KINDS)}, got {kind!r}")
    default_name = os.path.splitext(os.path.basename(source))[0] if source else kind
    name = raw.get("name", default_name)
    if not isinstance(name, str) or not _CLUSTER_NAME.match(name):
        raise SpecError(f"name: expected lower-case letters, digits and dashes, got {name!r}")
    groups_raw = raw.get("worker_groups")
    if not isinstance(groups_raw, list) or not groups_raw:
        raise SpecError("worker_groups: expected a non-empty list of worker groups")
    groups = tuple(_group(kind, i, g) for i, g in enumerate(groups_raw))
    names = [g.name for g in groups]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise SpecError(f"worker_groups: duplicate group name {', '.join(map(repr, dup))}")
    if kind == "ec2":
        ec2 = _ec2(raw.get("ec2"))
    elif "ec2" in raw:
        raise SpecError(f"ec2: section applies only to kind ec2 (this spec is {kind})")
    else:
        ec2 = None
    strategy = raw.get("strategy")
    if strategy is not None:
        from ..placement.registry import check_strategy

        try:
            check_strategy(strategy)
        except StockdagError as exc:
            raise SpecError(f"strategy: {exc.message}") from None
    return ClusterSpec(name=name, kind=kind, worker_groups=groups, ec2=ec2, strategy=strategy, source=source)


def load_spec(spec) -> ClusterSpec:
    """A :class:`ClusterSpec` from a spec, a mapping, a YAML file path, or a name in ``experiments/clusters``."""
    if isinstance(spec, ClusterSpec):
        return spec
    if isinstance(spec, dict):
        return parse_spec(spec)
    path = os.fspath(spec)
    if not os.path.exists(path):
        candidate = os.path.join(os.path.dirname(__file__), "..", "..", "experiments", "clusters", f"{path}.yaml")
        if os.path.exists(candidate):
            path = os.path.normpath(candidate)
        else:
            raise SpecError(f"cluster spec {path!r} not found (give a YAML file or a name in experiments/clusters)")
    with open(path) as f:
        try:
            raw = yaml.safe_load(f)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)  # where the parser stopped: the user needs the line
            where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            raise SpecError(f"{path}{where}: not valid YAML: {getattr(exc, 'problem', None) or str(exc).splitlines()[0]}") from None
    try:
        return parse_spec(raw, source=path)
    except SpecError as exc:
        raise SpecError(f"{path}: {exc.message}") from None
