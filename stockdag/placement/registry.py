"""The strategy registry: the one place that knows the placement strategies' names.

:data:`STRATEGIES` maps each name to its class, in the order results tables
list them (``dask``, Dask's own placement, first: it is a strategy like the
others). :func:`check_strategy` is the one check of a name that the CLI, the
server, the sweep, cluster specs and the plugin call, so every error lists
each name once; :func:`make_strategy` instantiates one with its options.

Add a strategy by writing a :class:`~stockdag.placement.base.Strategy`
subclass in its own module and adding it to the tuple below; the tests derive
every list they check from :data:`STRATEGIES` (and fail on a subclass that is
not registered).
"""
from __future__ import annotations

import inspect
from typing import Any

from ..errors import InvalidRequest
from .adaptive import Adaptive
from .base import Strategy
from .baseline import DaskDefault
from .fastest_node import FastestNode
from .heft import Heft
from .least_loaded import LeastLoaded
from .pinned import Pinned
from .round_robin import RoundRobin
from .seeded_random import SeededRandom
from .symbol_affinity import SymbolAffinity

#: name -> strategy class, in the order results tables list them
STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (DaskDefault, RoundRobin, SeededRandom, LeastLoaded, Pinned, SymbolAffinity, FastestNode, Heft, Adaptive)
}


def check_strategy(name: str) -> str:
    """Return ``name`` if it names a registered strategy.

    Raises
    ------
    InvalidRequest
        naming the unknown strategy and listing every registered one once.
    """
    if name not in STRATEGIES:
        raise InvalidRequest(f"unknown placement strategy {name!r}; choose one of: {', '.join(STRATEGIES)}")
    return name


def make_strategy(name: str, **options: Any) -> Strategy:
    """Instantiate strategy ``name`` from :data:`STRATEGIES` with its ``options``.

    Raises
    ------
    InvalidRequest
        for an unknown name or an option the strategy does not take.
    """
    cls = STRATEGIES[check_strategy(name)]
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise InvalidRequest(
            f"placement strategy {name!r} takes no option {', '.join(map(repr, unknown))}; "
            f"it takes: {', '.join(accepted)}"
        )
    return cls(**options)
