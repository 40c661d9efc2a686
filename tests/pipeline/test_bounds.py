"""The one owner of the DAG bounds, on the committed pipeline specs, against values worked out by hand.

Unit stage costs make the hand computation short: a path's length is its number of stages.
"""
from __future__ import annotations

import pytest

from stockdag.pipeline import bounds
from stockdag.pipeline.bounds import best_schedule, critical_path, stage_layers, width, work
from stockdag.pipeline.spec import load_pipeline
from stockdag.pipeline.table import stage_table


def table(name):
    return stage_table(load_pipeline(name))


def unit(name):
    return {s.id: 1.0 for s in table(name)}


def test_default_spec():
    t = table("default")
    layers = stage_layers(t)
    # C1; C6; C2 C5; C3 C4; the five models; C12
    assert layers == {"C1": 0, "C6": 1, "C2": 2, "C5": 2, "C3": 3, "C4": 3,
                      "C7": 4, "C8": 4, "C9": 4, "C10": 4, "C11": 4, "C12": 5}
    assert width(t) == 5 and work(unit("default")) == 12
    seconds, path = critical_path(unit("default"))
    assert seconds == 6 and path[0] == "C1" and path[-1] == "C12" and len(path) == 6
    # two workers: C1, C6 alone (2), C2|C5 and C3|C4 side by side (2), five models in three rounds (3), C12 (1)
    assert best_schedule(unit("default"), 2) == 8
    assert best_schedule(unit("default"), 1) == 12
    assert best_schedule(unit("default"), 3) == 7  # three workers: the same, the five models in two rounds


def test_wide_spec():
    t = table("wide")
    models = load_pipeline("wide").models
    assert len(t) == 6 + len(models) + 1 == 23
    assert width(t) == len(models) == 16
    assert work(unit("wide")) == 23
    assert critical_path(unit("wide")).seconds == 6  # as deep as the default: the models sit side by side
    costs = {**unit("wide"), "C30": 40.0}  # elastic_net, the 15th model, dominates
    assert critical_path(costs) == (4 + 40 + 1, ["C1", "C6", "C5", "C4", "C30", "C12"])
    assert best_schedule(unit("wide"), 1) == 23
    assert best_schedule(unit("wide"), 2) is None  # 2**22 assignments: more than MAX_ASSIGNMENTS


def test_deep_spec():
    t = table("deep")
    layers = stage_layers(t)
    assert layers["C13"] == 1 and layers["C14"] == 2 and layers["C8"] == 4
    assert (layers["C12"], layers["C15"], layers["C16"]) == (5, 6, 7)
    assert width(t) == 5 and work(unit("deep")) == 16
    # C1 C6 C2 C3 model C12 C15 C16; ties go to the later input (C5 -> C4 before C2 -> C3)
    assert critical_path(unit("deep")) == (8, ["C1", "C6", "C5", "C4", "C11", "C12", "C15", "C16"])
    # two workers: C1 (1); C6 C13 C2 C5 C14 C3 C4, seven stages on two workers (4); the models (3); C12 C15 C16 (3)
    assert best_schedule(unit("deep"), 2) == 11


def test_costs_in_table_order_and_missing_ids():
    t = table("deep")
    assert critical_path([1.0] * len(t), t) == critical_path(unit("deep"))
    assert critical_path([1.0] * 12).seconds == 6  # a bare vector is read against the default table
    with pytest.raises(ValueError, match="12 stage costs for a table of 16"):
        critical_path([1.0] * 12, t)
    assert work({"C1": 2.0, "C12": 1.0}) == 3.0  # stages without a cost cost nothing


def test_the_overhead_tool_report_and_simulator_use_this_owner():
    from stockdag.lab.experiments import analysis
    from stockdag.lab.overhead import best_schedule as overhead_best
    from stockdag.lab.overhead import critical_path as overhead_cp
    from stockdag.lab.simulate import critical_path as simulator_cp
    from stockdag.lab.simulate import planner

    assert overhead_cp is analysis.critical_path is simulator_cp is planner.critical_path is bounds.critical_path
    assert overhead_best is bounds.best_schedule
    assert analysis.width is bounds.width
