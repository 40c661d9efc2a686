"""``stockdag.__all__`` is the public API, and it cannot drift (as httpx's tests/test_exported_members.py).

Every name in it resolves; every public name the package has is in it (a name added without exporting it,
or exported without existing, fails); ``dir(stockdag)`` shows nothing else; and ``import stockdag`` loads
none of the heavy parts until a lazy name is used.
"""
from __future__ import annotations

import subprocess
import sys
import types

import stockdag

#: what the public API is for; a change here is a change of the API, to be made on purpose
EXPECTED = {
    # predicting, and the answer
    "predict", "PredictionResult", "PredictionJSON", "Mode", "Granularity",
    # the extension points: the graph and its sequential runner, both executors, a strategy and the plugin, clusters
    "build_graph", "run_stages", "CentralizedExecutor", "DistributedExecutor",
    "Strategy", "TaskInfo", "WorkerInfo", "PlacementPlugin", "deploy",
    # errors
    "StockdagError", "InvalidRequest", "InsufficientHistory", "OutsideData", "UnknownSymbol", "DataSourceError",
    "ModelStoreError",
}


def test_all_is_sorted_and_is_the_expected_api():
    assert stockdag.__all__ == sorted(stockdag.__all__, key=str.casefold)
    assert set(stockdag.__all__) == EXPECTED


def test_every_exported_name_resolves_to_what_its_module_defines():
    from stockdag.deploy import start
    from stockdag.pipeline.graph import build_graph
    from stockdag.placement.base import Strategy

    for name in stockdag.__all__:
        assert getattr(stockdag, name) is not None, name
    assert stockdag.build_graph is build_graph and stockdag.Strategy is Strategy and stockdag.deploy.start is start


def test_every_public_name_of_the_package_is_exported():
    for name in stockdag.__all__:  # load every lazy name, so that vars() holds all
        getattr(stockdag, name)
    public = {name for name, value in vars(stockdag).items()
              if not name.startswith("_") and not (isinstance(value, types.ModuleType) and name not in stockdag.__all__)
              and name != "annotations"}  # from __future__
    assert public == set(stockdag.__all__)
    assert set(dir(stockdag)) == set(stockdag.__all__) | {"__version__"}


def test_import_stockdag_loads_no_heavy_part():
    code = ("import sys, stockdag; heavy = [m for m in ('pandas', 'sklearn', 'distributed', 'nltk', 'stockdag.pipeline.stages') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
