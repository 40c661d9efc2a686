"""Every strategy's decision as a pure function: no scheduler, no cluster."""
from __future__ import annotations

import collections
import uuid

import dask
import pytest

from stockdag.errors import InvalidRequest
from stockdag.pipeline import STAGES as PIPELINE_STAGES
from stockdag.placement import STRATEGIES, CostModel, TaskInfo, WorkerInfo, describe, make_strategy
from stockdag.placement.hashring import HashRing
from stockdag.placement.preload import parse_options

# The stockdag stage graph (the contract with the pipeline): stage code, name, inputs.
STOCKDAG_STAGES = [(s.id, s.name, s.inputs) for s in PIPELINE_STAGES]  # the pipeline's own table, not a copy


def stockdag_tasks(rid=None, symbol="AAPL"):
    rid = rid or uuid.uuid4().hex
    names = {code: name for code, name, _ in STOCKDAG_STAGES}
    return [
        TaskInfo(f"{name}-{rid}", name, rid, code, symbol, tuple(f"{names[i]}-{rid}" for i in inputs))
        for code, name, inputs in STOCKDAG_STAGES
    ]


def chain_tasks(rid=None, n=5):
    rid = rid or uuid.uuid4().hex
    return [TaskInfo(f"s{i}-{rid}", f"s{i}", rid, dependencies=(f"s{i - 1}-{rid}",) if i else ()) for i in range(n)]


def fork_join_tasks(rid=None, width=4):
    rid = rid or uuid.uuid4().hex
    branches = [TaskInfo(f"branch_{i}-{rid}", f"branch_{i}", rid, dependencies=(f"source-{rid}",)) for i in range(width)]
    return [
        TaskInfo(f"source-{rid}", "source", rid),
        *branches,
        TaskInfo(f"join-{rid}", "join", rid, dependencies=tuple(b.key for b in branches)),
    ]


SHAPES = {"chain": chain_tasks, "fork-join": fork_join_tasks, "stockdag": stockdag_tasks}


def workers(n=2):
    return [WorkerInfo(f"tcp://10.0.0.{i}:1234", str(i)) for i in range(n)]


@pytest.fixture(params=sorted(STRATEGIES))
def strategy_name(request):
    return request.param


@pytest.mark.parametrize("shape", SHAPES)
def test_every_strategy_plans_every_task_on_a_running_worker(strategy_name, shape):
    tasks = SHAPES[shape]()
    ws = workers(3)
    plan = make_strategy(strategy_name).place(tasks, ws, CostModel())
    assert set(plan) == {t.key for t in tasks}
    if strategy_name == "dask":
        assert set(plan.values()) == {None}
    else:
        assert set(plan.values()) <= {w.address for w in ws}


def _strategy_classes_in_the_package():
    """Every Strategy subclass defined in a module of stockdag.placement (walked, not listed)."""
    import importlib
    import inspect
    import pkgutil

    import stockdag.placement as package
    from stockdag.placement.base import Strategy

    found = set()
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        found |= {c for _, c in inspect.getmembers(module, inspect.isclass)
                  if issubclass(c, Strategy) and c is not Strategy and c.__module__ == module.__name__}
    return found


def test_registry_names_match_classes_and_holds_every_strategy_of_the_package():
    """Issue 15: the registry is the one list; a strategy module whose class is not registered fails here."""
    for name, cls in STRATEGIES.items():
        assert cls.name == name
        assert cls.__doc__ and cls.__module__ != "stockdag.placement.base"
    assert _strategy_classes_in_the_package() == set(STRATEGIES.values())


def test_check_strategy_is_the_one_check_and_lists_each_name_once():
    from stockdag.placement import check_strategy

    for name in STRATEGIES:
        assert check_strategy(name) == name
    with pytest.raises(InvalidRequest) as exc:
        check_strategy("hfet")
    listed = exc.value.message.split("choose one of: ")[1].split(", ")
    assert listed == list(STRATEGIES)  # "dask" once: it is in the registry like every other strategy


def test_placement_package_has_no_import_circle_with_its_plugin():
    """Issue 15: plugin.py imported STRATEGIES back from the package's __init__ (a circle)."""
    import ast
    import pathlib

    import stockdag.placement.plugin as plugin

    tree = ast.parse(pathlib.Path(plugin.__file__).read_text())
    relative = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 1]
    assert all(n.module for n in relative), "plugin.py imports from the package's __init__"


def test_unknown_strategy_and_option_are_invalid_requests():
    with pytest.raises(InvalidRequest, match="unknown placement strategy 'nope'"):
        make_strategy("nope")
    with pytest.raises(InvalidRequest, match="takes no option 'seed'"):
        make_strategy("heft", seed=1)


def test_loose_comes_from_config_or_option():
    assert make_strategy("heft").loose is False
    assert make_strategy("heft", loose=True).loose is True
    with dask.config.set({"stockdag.placement.loose": True}):
        assert make_strategy("round-robin").loose is True


# ---------------------------------------------------------------- round-robin
def test_round_robin_rotates_per_request():
    rr = make_strategy("round-robin")
    ws = workers(2)
    seen = collections.defaultdict(set)
    for _ in range(2):
        tasks = stockdag_tasks()
        plan = rr.place(tasks, ws, CostModel())
        for t in tasks:
            seen[t.stage].add(plan[t.key])
    # naive dealing in task order would put each stage on the same worker every time
    assert all(len(addresses) == 2 for addresses in seen.values())


def test_round_robin_deals_in_task_order():
    ws = workers(3)
    tasks = chain_tasks(n=4)
    plan = make_strategy("round-robin", start=1).place(tasks, ws, CostModel())
    assert [plan[t.key] for t in tasks] == [ws[1].address, ws[2].address, ws[0].address, ws[1].address]


# ---------------------------------------------------------------- random
def test_random_is_reproducible_with_its_seed():
    tasks = stockdag_tasks(rid="0" * 32)
    ws = workers(4)
    a = make_strategy("random", seed=7).place(tasks, ws, CostModel())
    b = make_strategy("random", seed=7).place(tasks, ws, CostModel())
    c = make_strategy("random", seed=8).place(tasks, ws, CostModel())
    assert a == b
    assert a != c


def test_random_uses_every_worker():
    strategy = make_strategy("random", seed=0)
    ws = workers(3)
    used = collections.Counter()
    for _ in range(20):
        used.update(strategy.place(stockdag_tasks(), ws, CostModel()).values())
    assert set(used) == {w.address for w in ws}


# ---------------------------------------------------------------- least-loaded
def test_least_loaded_starts_on_the_idle_worker_and_spreads():
    ws = [WorkerInfo("tcp://busy:1", "busy", occupancy=1.0), WorkerInfo("tcp://idle:1", "idle")]
    tasks = chain_tasks(n=4)
    plan = make_strategy("least-loaded").place(tasks, ws, CostModel(default_duration=0.5))
    # loads (busy, idle) before each task: (1.0, 0) -> idle; (1.0, 0.5) -> idle; (1.0, 1.0) a tie -> busy,
    # first by name and in the list; (1.5, 1.0) -> idle
    assert [plan[t.key] for t in tasks] == ["tcp://idle:1", "tcp://idle:1", "tcp://busy:1", "tcp://idle:1"]


def test_least_loaded_divides_by_threads():
    ws = [WorkerInfo("tcp://one:1", "a", nthreads=1, occupancy=1.0), WorkerInfo("tcp://four:1", "b", nthreads=4, occupancy=2.0)]
    plan = make_strategy("least-loaded").place(chain_tasks(n=1), ws, CostModel())
    assert set(plan.values()) == {"tcp://four:1"}


# ---------------------------------------------------------------- pinned
def test_pinned_by_stage_name_and_code():
    ws = workers(3)
    strategy = make_strategy("pinned", pinned={"make_features": "2", "C7": 1, "select": "0"})
    tasks = stockdag_tasks()
    plan = strategy.place(tasks, ws, CostModel())
    by_stage = {t.stage: plan[t.key] for t in tasks}
    assert by_stage["make_features"] == ws[2].address
    assert by_stage["ridge"] == ws[1].address  # by code C7; worker names compare as strings
    assert by_stage["select"] == ws[0].address
    assert not strategy.unavailable


def test_pinned_layout_is_fixed_across_requests_and_falls_back_when_a_worker_is_missing():
    ws = workers(3)
    strategy = make_strategy("pinned", pinned={"make_features": "gone"})
    first, second = stockdag_tasks(), stockdag_tasks()
    p1 = strategy.place(first, ws, CostModel())
    p2 = strategy.place(second, ws, CostModel())
    assert [p1[t.key] for t in first] == [p2[t.key] for t in second]
    assert strategy.unavailable == {"make_features"}
    # unlisted stages spread over the workers by stage hash
    assert len(set(p1.values())) > 1


def test_pinned_follows_a_pinned_stage_into_its_fused_task():
    # at granularity branch C2 and C3 run in one task "fetch_prices+make_features" (code "C2+C3")
    ws = workers(2)
    rid = uuid.uuid4().hex
    fused = TaskInfo(f"fetch_prices+make_features-{rid}", "fetch_prices+make_features", rid, "C2+C3")
    assert make_strategy("pinned", pinned={"C3": "1"}).place([fused], ws, CostModel()) == {fused.key: ws[1].address}
    assert make_strategy("pinned", pinned={"make_features": "0"}).place([fused], ws, CostModel()) == {fused.key: ws[0].address}


def test_pinned_config_default():
    with dask.config.set({"stockdag.placement.pinned": {"C1": "1"}}):
        strategy = make_strategy("pinned")
    tasks = stockdag_tasks()
    assert strategy.place(tasks, workers(2), CostModel())[tasks[0].key] == workers(2)[1].address


# ---------------------------------------------------------------- symbol-affinity
def test_symbol_affinity_keeps_a_symbol_on_one_worker():
    strategy = make_strategy("symbol-affinity")
    ws = workers(4)
    a = strategy.place(stockdag_tasks(symbol="AAPL"), ws, CostModel())
    b = strategy.place(stockdag_tasks(symbol="AAPL"), ws, CostModel())
    assert len(set(a.values())) == 1
    assert set(a.values()) == set(b.values())


def test_symbol_affinity_without_symbol_hashes_the_request():
    strategy = make_strategy("symbol-affinity")
    plan = strategy.place(fork_join_tasks(), workers(3), CostModel())
    assert len(set(plan.values())) == 1


def test_consistent_hashing_moves_only_the_share_of_the_joining_or_leaving_worker():
    symbols = [f"SYM{i}" for i in range(2000)]
    four = HashRing(["0", "1", "2", "3"])
    five = HashRing(["0", "1", "2", "3", "4"])
    before = {s: four.lookup(s) for s in symbols}
    after = {s: five.lookup(s) for s in symbols}
    moved = [s for s in symbols if before[s] != after[s]]
    assert all(after[s] == "4" for s in moved)  # only onto the newcomer
    assert 0.1 < len(moved) / len(symbols) < 0.35  # about 1/5
    three = HashRing(["0", "1", "3"])
    left = {s: three.lookup(s) for s in symbols}
    assert all(left[s] == before[s] for s in symbols if before[s] != "2")  # only the leaver's symbols move


def test_hash_ring_is_the_same_in_every_process():
    # a fixed expectation: BLAKE2b, not the per-process salted hash()
    assert HashRing(["a", "b", "c"]).lookup("AAPL") == HashRing(["c", "b", "a"]).lookup("AAPL")
    assert HashRing(["a", "b", "c"], vnodes=64).lookup("AAPL") == "b"


# ---------------------------------------------------------------- fastest-node
def test_fastest_node_puts_the_whole_request_on_the_fastest_worker():
    ws = workers(3)
    costs = CostModel()
    costs.observe("make_features", "0", 1.0)
    costs.observe("make_features", "1", 0.2)
    costs.observe("make_features", "2", 0.5)
    plan = make_strategy("fastest-node").place(stockdag_tasks(), ws, costs)
    assert set(plan.values()) == {ws[1].address}


def test_fastest_node_uses_speed_hints_before_learning_and_breaks_ties_by_name():
    ws = workers(3)
    assert set(make_strategy("fastest-node").place(chain_tasks(), ws, CostModel()).values()) == {ws[0].address}
    hinted = CostModel(speeds={"2": 4.0})
    assert set(make_strategy("fastest-node").place(chain_tasks(), ws, hinted).values()) == {ws[2].address}


# ---------------------------------------------------------------- describing tasks
def test_describe_reads_the_annotation_first():
    rid = uuid.uuid4().hex
    ann = {"stockdag": {"stage": "C3", "name": "make_features", "request": rid, "symbol": "AAPL"}}
    assert describe(f"make_features-{rid}", ann) == ("make_features", rid, "C3", "AAPL")


def test_describe_recognises_requests_by_their_annotation_only():
    rid = uuid.uuid4().hex
    # Client.submit/map keys look like a request's: "<function>-<32 hex>"
    assert describe(f"random_forest-{rid}", {}) == ("random_forest", None, None, None)
    assert describe(f"branch_3-{rid}") == ("branch_3", None, None, None)
    assert describe(f"branch_3-{rid}", {"stockdag": {"request": rid}}) == ("branch_3", rid, None, None)
    assert describe(("getitem-1", 0)) == ("getitem", None, None, None)
    assert describe("plain-key") == ("plain-key", None, None, None)  # dask.utils.key_split


# ---------------------------------------------------------------- learned costs
def test_cost_model_learns_means_and_forgets_slowly():
    costs = CostModel(alpha=0.5)
    costs.observe("s", "a", 1.0, nbytes=100)
    costs.observe("s", "a", 3.0, nbytes=300)
    assert costs.learned("s", "a") == 2.0  # a plain mean until 1/alpha observations
    costs.observe("s", "a", 4.0)
    assert costs.learned("s", "a") == 3.0  # then exponentially weighted
    assert costs.nbytes("s") == 200
    assert costs.count("s", "a") == 3


def test_cost_model_fallbacks():
    costs = CostModel(default_duration=0.5, speeds={"fast": 2.0})
    assert costs.estimate("new", "a") == 0.5
    assert costs.estimate("new", "fast") == 0.25
    costs.priors["known"] = 2.0
    assert costs.estimate("known", "a") == 2.0
    # a worker learned to be 4x slower on shared stages is expected 4x slower on others
    costs.observe("x", "a", 1.0)
    costs.observe("x", "slow", 4.0)
    costs.observe("y", "a", 1.0)
    assert costs.estimate("y", "slow") == pytest.approx(4.0)
    assert costs.learned("y", "slow") is None


def test_cost_model_transfer():
    costs = CostModel(bandwidth=1e6, latency=0.01)
    costs.observe("s", "a", 0.1, nbytes=2e6)
    assert costs.transfer("s") == pytest.approx(2.01)
    assert costs.transfer("unseen") == pytest.approx(0.01)
    assert set(costs.snapshot()) >= {"durations", "nbytes", "bandwidth"}


# ---------------------------------------------------------------- preload options
def test_preload_options_are_yaml_values():
    assert parse_options(["seed=3", "pinned={C3: big, C7: '1'}", "loose=true"]) == {
        "seed": 3, "pinned": {"C3": "big", "C7": "1"}, "loose": True,
    }
    with pytest.raises(InvalidRequest, match="KEY=VALUE"):
        parse_options(["seed"])
