"""The plugin's hooks on a real, unstarted ``distributed.Scheduler`` (no workers running, no network).

The scheduler's state is built the way ``update_graph`` leaves it (new tasks,
released, with priorities and annotations), then the plugin's hooks are called
in the order the scheduler calls them, so each piece of bookkeeping is checked
step by step.
"""
from __future__ import annotations

import uuid

import pytest
from dask._task_spec import Task
from fake_scheduler import fake_scheduler

from stockdag.placement import PlacementPlugin


def _noop():
    return None


@pytest.fixture
def scheduler():
    s = fake_scheduler(2)
    yield s
    s.http_server.stop()


def submit(plugin, scheduler, stages=("a", "b"), rid=None, symbol=None):
    """Create a chain of released tasks ``<stage>-<rid>`` and call update_graph as the scheduler would."""
    rid = rid or uuid.uuid4().hex
    keys = []
    for i, stage in enumerate(stages):
        key = f"{stage}-{rid}"
        ts = scheduler.new_task(key, Task(key, _noop), "released")
        ts.priority = (0, 0, i)
        # the annotation makes it a stockdag task (build_graph sets it)
        ts.annotations = {"stockdag": {"stage": f"C{i}", "name": stage, "request": rid, "symbol": symbol}}
        if keys:
            ts.add_dependency(scheduler.tasks[keys[-1]])
        keys.append(key)
    plugin.update_graph(scheduler, client="c", keys={keys[-1]}, tasks=keys, annotations={}, priority={}, stimulus_id="s")
    return rid, keys


def finish(plugin, scheduler, key, seconds=0.2):
    worker = next(iter(scheduler.tasks[key].worker_restrictions))
    plugin.transition(key, "waiting", "processing", stimulus_id="s")
    plugin.transition(
        key, "processing", "memory", stimulus_id="s", worker=worker, nbytes=100, type=None, typename="int",
        startstops=[{"action": "compute", "start": 10.0, "stop": 10.0 + seconds}],
    )
    return worker


def test_restrictions_are_set_on_released_tasks(scheduler):
    plugin = PlacementPlugin("fastest-node")
    rid, keys = submit(plugin, scheduler)
    (address,) = set(plugin.plan_for(rid).values())
    for key in keys:
        assert scheduler.tasks[key].worker_restrictions == {address}
        assert scheduler.tasks[key].loose_restrictions is False


def test_planned_work_counts_as_load_until_it_starts(scheduler):
    plugin = PlacementPlugin("least-loaded")
    first, first_keys = submit(plugin, scheduler, stages=("a",))
    busy = plugin.plan_for(first)[first_keys[0]]
    assert plugin.pending()[busy] == pytest.approx(0.5)  # nothing learned: the default estimate
    # the scheduler's occupancy does not see restricted tasks still waiting; the plugin does
    second, second_keys = submit(plugin, scheduler, stages=("a",))
    assert plugin.plan_for(second)[second_keys[0]] != busy
    finish(plugin, scheduler, first_keys[0])
    assert plugin.pending()[busy] == pytest.approx(0.0)


def test_durations_are_learned_per_stage_and_worker_name(scheduler):
    plugin = PlacementPlugin("round-robin")
    _, keys = submit(plugin, scheduler, stages=("a", "b"))
    workers = {finish(plugin, scheduler, key, seconds=0.25) for key in keys}
    names = {str(scheduler.workers[w].name) for w in workers}
    assert names == {"0", "1"}  # round-robin dealt the two tasks to both
    learned = plugin.costs.snapshot()["durations"]
    assert sorted(learned.values()) == pytest.approx([0.25, 0.25])
    assert {k.split("@")[0] for k in learned} == {"a", "b"}


def test_forgetting_a_task_drops_its_bookkeeping(scheduler):
    plugin = PlacementPlugin("heft")
    _, keys = submit(plugin, scheduler, stages=("a", "b", "c"))
    for key in keys:
        plugin.transition(key, "released", "forgotten", stimulus_id="s")
    assert not plugin._live
    assert not any(plugin._restricted.values())
    assert all(v == pytest.approx(0.0) for v in plugin.pending().values())


def test_tasks_that_exist_already_or_have_user_restrictions_are_not_planned(scheduler):
    plugin = PlacementPlugin("round-robin")
    rid = uuid.uuid4().hex
    started = scheduler.new_task(f"started-{rid}", Task(f"started-{rid}", _noop), "released")
    started.state = "memory"
    mine = scheduler.new_task(f"mine-{rid}", Task(f"mine-{rid}", _noop), "released")
    mine.worker_restrictions = {"tcp://127.0.0.1:41001"}
    keys = [started.key, mine.key]
    plugin.update_graph(scheduler, client="c", keys=set(keys), tasks=keys, annotations={}, priority={}, stimulus_id="s")
    assert plugin.plan_for(rid) == {}
    assert mine.worker_restrictions == {"tcp://127.0.0.1:41001"}


def test_symbol_annotation_groups_requests_by_symbol(scheduler):
    plugin = PlacementPlugin("symbol-affinity")
    a, _ = submit(plugin, scheduler, symbol="MSFT")
    b, _ = submit(plugin, scheduler, symbol="MSFT")
    assert set(plugin.plan_for(a).values()) == set(plugin.plan_for(b).values())
    assert len(set(plugin.plan_for(a).values())) == 1


def test_tasks_without_a_request_id_are_left_to_dask(scheduler):
    plugin = PlacementPlugin("round-robin")
    keys = []
    for i, key in enumerate(["x-1", "y-2"]):
        ts = scheduler.new_task(key, Task(key, _noop), "released")
        ts.priority = (0, 0, i)
        keys.append(key)
    plugin.update_graph(scheduler, client="c", keys=set(keys), tasks=keys, annotations={}, priority={}, stimulus_id="s1")
    assert not plugin.plans
    assert all(scheduler.tasks[k].worker_restrictions is None for k in keys)
    assert not plugin.errors

def _lose(plugin, scheduler, address):
    ws = scheduler.workers.pop(address)
    scheduler.running.discard(ws)
    plugin.remove_worker(scheduler, address, stimulus_id="lost")


def test_losing_a_worker_replans_its_waiting_tasks(scheduler):
    plugin = PlacementPlugin("pinned", pinned={"a": "0", "b": "1"})
    rid, keys = submit(plugin, scheduler)
    for key in keys:
        scheduler.tasks[key].state = "waiting"
    one = plugin.plan_for(rid)[keys[1]]
    zero = plugin.plan_for(rid)[keys[0]]
    _lose(plugin, scheduler, one)
    assert plugin.plan_for(rid) == {keys[0]: zero, keys[1]: zero}
    assert scheduler.tasks[keys[1]].worker_restrictions == {zero}
    assert [r["key"] for r in plugin.replans] == [keys[1]]
    assert plugin.warnings  # the pinned worker was gone
    assert one not in plugin.pending()


def test_losing_every_worker_relaxes_the_restrictions(scheduler):
    plugin = PlacementPlugin("heft")
    rid, keys = submit(plugin, scheduler)
    for key in keys:
        scheduler.tasks[key].state = "waiting"
    for address in list(scheduler.workers):
        _lose(plugin, scheduler, address)
    assert set(plugin.plan_for(rid).values()) == {None}
    assert all(scheduler.tasks[k].worker_restrictions is None for k in keys)
    assert not plugin.errors


def test_tasks_already_done_are_not_replanned(scheduler):
    plugin = PlacementPlugin("fastest-node")
    rid, keys = submit(plugin, scheduler)
    (address,) = set(plugin.plan_for(rid).values())
    for key in keys:
        finish(plugin, scheduler, key)
        scheduler.tasks[key].state = "memory"
    _lose(plugin, scheduler, address)
    assert not plugin.replans


def test_any_strategy_s_warnings_reach_the_plugin(scheduler):
    """Issue 15: the plugin asked for pinned's own attribute; any strategy's drain_warnings is recorded now."""
    plugin = PlacementPlugin("round-robin")
    notes = ["a planned worker is missing"]
    plugin.strategy.drain_warnings = lambda: [notes.pop()] if notes else []
    submit(plugin, scheduler)
    submit(plugin, scheduler)
    assert list(plugin.warnings) == ["a planned worker is missing"]


def test_work_left_to_dask_counts_on_every_worker_until_it_starts(scheduler):
    """adaptive under load restricts nothing; the next request must still see that work coming (issue 23 item 5)."""
    plugin = PlacementPlugin("adaptive", idle=-1.0)  # no worker is ever idle: every request is left to Dask
    rid, keys = submit(plugin, scheduler, stages=("a", "b"))
    assert set(plugin.plan_for(rid).values()) == {None}
    assert all(not scheduler.tasks[k].worker_restrictions for k in keys)
    assert plugin.unplaced() == pytest.approx(1.0)  # two tasks at the default 0.5 s
    before = {ws.address: ws.occupancy for ws in scheduler.running}
    # Dask will put it somewhere: each of the two one-thread workers counts half of it
    assert {w.address: w.occupancy - before[w.address] for w in plugin._workers(scheduler)} == pytest.approx(
        {a: 0.5 for a in before})
    plugin.transition(keys[0], "waiting", "processing", stimulus_id="s")  # now in the scheduler's own occupancy
    assert plugin.unplaced() == pytest.approx(0.5)
    plugin.transition(keys[1], "released", "forgotten", stimulus_id="s")
    assert plugin.unplaced() == pytest.approx(0.0) and plugin.summary()["unplaced"] == 0.0
