"""Cluster specifications: a YAML file that says what to start, validated before anything starts.

A spec names a ``kind`` (one of :data:`KINDS`: ``local``, ``emulated``, ``testbed``, ``ec2``, ``ssh``)
and one or more *worker groups*. Every worker of group ``big`` is named ``big-0``,
``big-1``, ... and carries the Dask resource ``big`` (one unit per thread), so the
placement strategies (``pinned``, ``heft``) can address a group by worker name or
resource. A kind with settings reads them from its own section (``ec2:``, ``ssh:``).

Example (``experiments/clusters/emulated-hetero.yaml``)::

    name: emulated-hetero
    kind: emulated
    worker_groups:
      - {name: fast, count: 1, threads: 1, memory_limit: 2GiB, cpu_share: 1.0}
      - {name: slow, count: 1, threads: 1, memory_limit: 2GiB, cpu_share: 0.5, link_delay: 0.02}

To extend: a new kind is a module (see :mod:`stockdag.deploy.base`) and its entry
in :data:`KINDS`; a kind's setting is a field of its ``Options`` dataclass. Unknown
keys are rejected by name, so a typo never silently falls back to a default.
"""
from __future__ import annotations

import dataclasses
import os
import re

import yaml
from dask.utils import parse_bytes

from ..config import shipped_spec, shipped_specs
from ..errors import StockdagError
from .ec2 import AMI_ID, SECURITY_GROUP_ID, EC2Deployment, EC2Options  # noqa: F401  (AMI_ID...: re-exported for the CLI)
from .emulated import EmulatedDeployment
from .local import LocalDeployment
from .schema import (  # noqa: F401  (re-exported: the spec's types are imported from here)
    ClusterSpec,
    DeployError,
    EmulationUnavailable,
    SpecError,
    WorkerGroup,
    number,
    unknown_keys,
)
from .ssh import SSHDeployment
from .testbed import TestbedDeployment

#: every cluster kind: ``{kind: Deployment subclass}``, the one place a kind is registered
KINDS = {cls.kind: cls for cls in (LocalDeployment, EmulatedDeployment, TestbedDeployment, EC2Deployment, SSHDeployment)}

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
_CLUSTER_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")
_GROUP_FIELDS = {f.name for f in dataclasses.fields(WorkerGroup)}
_TOP_KEYS = {"name", "kind", "worker_groups", "strategy"}


def _sections() -> set[str]:
    """The kinds that have settings, whose names are a spec's section keys."""
    return {k for k, cls in KINDS.items() if dataclasses.fields(cls.Options)}


def _group(kind: str, i: int, raw) -> WorkerGroup:
    where = f"worker_groups[{i}]"
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: expected a mapping with name, count, threads, ..., got {raw!r}")
    name = raw.get("name")
    if isinstance(name, str) and name:
        where = f"worker group {name!r}"
    own = set(KINDS[kind].group_keys)
    others = {key for cls in KINDS.values() for key in cls.group_keys} - own
    unknown_keys(where, raw, _GROUP_FIELDS)  # a kind's group_keys are WorkerGroup fields
    if not isinstance(name, str) or not _NAME.match(name):
        raise SpecError(f"{where}: name: expected a lower-case identifier (a-z, 0-9, _; starts with a letter), got {name!r}")
    count = number(f"{where}: count", raw.get("count", 1), kind=int, low=1, high=256)
    threads = number(f"{where}: threads", raw.get("threads", 1), kind=int, low=1, high=256)
    memory_limit = raw.get("memory_limit", "auto")
    if memory_limit != "auto":
        try:
            if parse_bytes(memory_limit) <= 0:
                raise ValueError
        except (ValueError, TypeError):
            raise SpecError(f"{where}: memory_limit must be a size such as '2GiB' or 'auto', got {memory_limit!r}") from None
        memory_limit = str(memory_limit)
    for key in sorted(set(raw) & others):
        owners = [k for k, cls in KINDS.items() if key in cls.group_keys]
        raise SpecError(f"{where}: {key} applies only to kind {' or '.join(owners)} (this spec is {kind})")
    extra = KINDS[kind].check_group(where, raw)
    return WorkerGroup(name, count, threads, memory_limit, **extra)


def parse_spec(raw, source: str | None = None) -> ClusterSpec:
    """Validate a spec given as a mapping (the parsed YAML); raise :class:`SpecError` naming the bad key."""
    if not isinstance(raw, dict):
        raise SpecError(f"a cluster spec must be a mapping with kind and worker_groups, got {type(raw).__name__}")
    unknown_keys("spec", raw, _TOP_KEYS | _sections())
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
    for section in sorted((set(raw) & set(KINDS)) - {kind}):
        raise SpecError(f"{section}: section applies only to kind {section} (this spec is {kind})")
    options = KINDS[kind].parse_options(raw.get(kind))
    strategy = raw.get("strategy")
    if strategy is not None:
        from ..placement.registry import check_strategy

        try:
            check_strategy(strategy)
        except StockdagError as exc:
            raise SpecError(f"strategy: {exc.message}") from None
    return ClusterSpec(name=name, kind=kind, worker_groups=groups, options=options, strategy=strategy, source=source)


SHIPPED = "deploy/clusters"  # the named specs in the package: a link to experiments/clusters in a checkout


def load_spec(spec) -> ClusterSpec:
    """A :class:`~stockdag.deploy.schema.ClusterSpec` from a spec, a mapping, a YAML file path, or a shipped name (``experiments/clusters``)."""
    if isinstance(spec, ClusterSpec):
        return spec
    if isinstance(spec, dict):
        return parse_spec(spec)
    path = os.fspath(spec)
    if not os.path.exists(path):
        found = shipped_spec(SHIPPED, path)
        if found is None:
            raise SpecError(f"cluster spec {path!r} not found: give a YAML file or one of the named specs "
                            f"({', '.join(shipped_specs(SHIPPED))})")
        path = found
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
