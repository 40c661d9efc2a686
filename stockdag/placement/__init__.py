"""Job-placement strategies for the stockdag graph, applied by a Dask scheduler plugin.

:data:`STRATEGIES` is the one registry (name -> class) that the CLI, the
server, the notebooks and the tests import; :class:`PlacementPlugin` applies
one of them on the scheduler, and :func:`register` installs it from a client.
A remote scheduler loads it with ``dask scheduler --preload
stockdag.placement.preload --strategy NAME``.

Add a strategy by writing a :class:`Strategy` subclass in its own module and
listing it in :mod:`stockdag.placement.registry` (which owns the names and
:func:`check_strategy`).
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .base import Strategy, TaskInfo, WorkerInfo, describe
from .costs import CostModel
from .plugin import NAME, PlacementPlugin
from .registry import STRATEGIES, check_strategy, make_strategy

if TYPE_CHECKING:
    from distributed import Client, Scheduler


async def _install(plugin: PlacementPlugin, dask_scheduler: Scheduler | None = None) -> None:
    """On the scheduler: replace the placement plugin by ``plugin`` (which takes over the old one's tasks), silently."""
    assert dask_scheduler is not None  # run_on_scheduler passes it
    await plugin.start(dask_scheduler)  # while the old one is still installed: start() adopts its restricted tasks
    if NAME in dask_scheduler.plugins:
        dask_scheduler.remove_plugin(NAME)  # add_plugin would warn about overwriting
    dask_scheduler.add_plugin(plugin, name=NAME)


def register(client: Client, strategy: str | None = None, **options: Any) -> Any:
    """Install a :class:`~stockdag.placement.plugin.PlacementPlugin` on ``client``'s scheduler, replacing any earlier one.

    ``strategy`` defaults to ``stockdag.placement.strategy``; ``options`` go to
    the plugin and its strategy. Switching to ``dask`` installs a plugin that
    plans nothing (it still learns costs), so no earlier strategy keeps placing
    tasks. Returns what ``Client.run_on_scheduler`` returns (an awaitable for an
    asynchronous client).

    Raises
    ------
    stockdag.InvalidRequest
        for an unknown strategy or option (before anything is sent).
    """
    return client.run_on_scheduler(_install, PlacementPlugin(strategy, **options))


async def _ensure(plugin: PlacementPlugin, dask_scheduler: Scheduler | None = None) -> str:
    """On the scheduler: keep a placement plugin already there, else install ``plugin``; the strategy in effect."""
    assert dask_scheduler is not None  # run_on_scheduler passes it
    existing = dask_scheduler.plugins.get(NAME)
    if existing is not None:
        return str(existing.strategy_name)  # type: ignore[attr-defined]  # (a PlacementPlugin: it has NAME)
    await _install(plugin, dask_scheduler)
    return str(plugin.strategy_name)


def ensure(client: Client, strategy: str | None = None, **options: Any) -> Any:
    """Install ``strategy`` (default ``stockdag.placement.strategy``) unless the scheduler already places with one.

    For a client that was given no strategy: a cluster started with its own
    (``dask scheduler --preload stockdag.placement.preload --strategy heft``,
    ``stockdag cluster up`` of a spec naming one, an earlier server) keeps it.
    Returns the name of the strategy in effect (an awaitable for an asynchronous client).
    """
    return client.run_on_scheduler(_ensure, PlacementPlugin(strategy, **options))


def _in_effect(dask_scheduler: Scheduler | None = None) -> str:
    assert dask_scheduler is not None  # run_on_scheduler passes it
    plugin = dask_scheduler.plugins.get(NAME)
    return str(getattr(plugin, "strategy_name", "dask"))


def in_effect(client: Client) -> Any:
    """The strategy placing on ``client``'s scheduler (``dask`` without a plugin); changes nothing there.

    An awaitable for an asynchronous client.
    """
    return client.run_on_scheduler(_in_effect)


def _remove(dask_scheduler: Scheduler | None = None) -> bool:
    assert dask_scheduler is not None  # run_on_scheduler passes it
    plugin = dask_scheduler.plugins.get(NAME)
    if plugin is None:
        return False
    if isinstance(plugin, PlacementPlugin):
        plugin.release(dask_scheduler, stimulus_id=f"stockdag-placement-unregister-{time.time()}")
    dask_scheduler.remove_plugin(NAME)
    return True


def unregister(client: Client) -> Any:
    """Remove the placement plugin from ``client``'s scheduler, so Dask's own placement decides (no plugin at all,
    unlike :func:`register` with ``dask``). Returns whether there was one (an awaitable for an asynchronous client).

    Tasks the plugin restricted and that have not started lose their restriction first (nothing would re-plan
    them if their worker left). ``Client.unregister_scheduler_plugin`` skips that step: use this instead.
    """
    return client.run_on_scheduler(_remove)


__all__ = [
    "STRATEGIES",
    "check_strategy",
    "PlacementPlugin",
    "register",
    "ensure",
    "in_effect",
    "unregister",
    "make_strategy",
    "NAME",
    "Strategy",
    "TaskInfo",
    "WorkerInfo",
    "CostModel",
    "describe",
]
