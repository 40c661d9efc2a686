"""The EC2 orphan sweep of ``stockdag cluster down --all --spec SPEC``.

An instance that outlived its cluster (a killed sweep, a lost state file) is
still tagged ``stockdag-cluster=<id>``; :func:`terminate_orphans` terminates
every such instance in the regions of the given ec2 specs.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator


def terminate_orphans(specs: Iterable) -> Iterator[str]:
    """Terminate every stockdag-tagged instance in each spec's region; yield each instance id as it goes."""
    from . import load_spec
    from .ec2 import terminate_tagged

    for spec in specs:
        yield from terminate_tagged(load_spec(spec))
