"""Load the placement plugin on a scheduler started elsewhere.

::

    dask scheduler --preload stockdag.placement.preload --strategy heft \\
        --strategy-option seed=3 --strategy-option 'pinned={C3: gpu-box}'

Without ``--strategy`` the scheduler's own ``stockdag.placement.strategy``
configuration decides (e.g. ``DASK_STOCKDAG__PLACEMENT__STRATEGY=heft``). Each
``--strategy-option KEY=VALUE`` is parsed as YAML and passed to
:class:`~stockdag.placement.PlacementPlugin`.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import click
import yaml

from ..errors import InvalidRequest
from .plugin import PlacementPlugin

if TYPE_CHECKING:
    from distributed import Scheduler


def parse_options(items: Iterable[str]) -> dict[str, Any]:
    """``["seed=3", "pinned={C3: a}"]`` -> ``{"seed": 3, "pinned": {"C3": "a"}}`` (values are YAML)."""
    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InvalidRequest(f"placement option {item!r} is not KEY=VALUE")
        options[key.strip().replace("-", "_")] = yaml.safe_load(value)
    return options


@click.command()
@click.option("--strategy", default=None, help="placement strategy (default: stockdag.placement.strategy)")
@click.option(
    "--strategy-option", "strategy_options", multiple=True, metavar="KEY=VALUE",
    help="an option of the plugin or strategy, VALUE parsed as YAML; repeatable",
)
def dask_setup(scheduler: Scheduler, strategy: str | None, strategy_options: tuple[str, ...]) -> None:
    """Register the stockdag placement plugin on this scheduler."""
    plugin = PlacementPlugin(strategy, **parse_options(strategy_options))
    # the scheduler calls plugin.start() itself once it has started
    scheduler.add_plugin(plugin)
