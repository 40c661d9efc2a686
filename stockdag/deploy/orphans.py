"""The EC2 orphan sweep of ``stockdag cluster down --all --spec SPEC``.

An instance that outlived its cluster (a killed sweep, a lost state file) is
still tagged ``stockdag-cluster=<id>``; :func:`terminate_orphans` terminates
those of the caller (tag ``stockdag-owner``, :func:`stockdag.deploy.ec2.owner`)
in the regions of the given ec2 specs, never another person's.
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator

from .schema import DeployError


def _terminal() -> bool:
    return bool(sys.stdin) and sys.stdin.isatty()


def _ask(question: str) -> bool:
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def terminate_orphans(specs: Iterable, yes: bool = False, ask: Callable[[str], bool] | None = None) -> Iterator[str]:
    """Terminate the caller's stockdag-tagged instances in each spec's region; yield each instance id as it goes.

    Instances are ended only with ``yes``, or when ``ask`` (default: a y/N prompt
    on the terminal) agrees; with neither ``yes``, ``ask`` nor a terminal it refuses in one line.
    Instances tagged by another owner, or by no owner, are never touched.
    """
    from . import load_spec
    from .ec2 import owner, tagged_instances, terminate_tagged

    for spec in map(load_spec, specs):
        region = spec.options.region
        me = owner(region)
        ids = tagged_instances(region, owned_by=me)
        if not ids:
            continue
        if not yes:
            if ask is None and not _terminal():
                raise DeployError(f"{len(ids)} instance(s) of yours in {region} are live ({', '.join(ids)}); "
                                  "add --yes to terminate them (no terminal to ask on)")
            if not (ask or _ask)(f"terminate {len(ids)} instance(s) of yours in {region}: {', '.join(ids)}?"):
                raise DeployError(f"left {len(ids)} instance(s) of yours in {region} running: {', '.join(ids)}")
        yield from terminate_tagged(spec, owned_by=me)
