"""Spec validation, the dry-run plan and the CLI around them: no cluster starts here."""
from __future__ import annotations

import glob
import json
import os

import pytest

from stockdag.cli import main
from stockdag.deploy import KINDS, SpecError, load_spec, parse_spec, plan
from stockdag.deploy.prices import PRICES_DATE
from stockdag.errors import StockdagError

EXAMPLES = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "..", "experiments", "clusters", "*.yaml")))
EC2 = {"ami": "ami-0123456789abcdef0", "security_groups": ["sg-0123456789abcdef0"]}


def group(**kw):
    return {"name": "g", "count": 1, "threads": 1, "memory_limit": "1GiB", **kw}


def test_every_kind_has_an_example_spec_and_every_example_loads():
    names = {os.path.basename(p) for p in EXAMPLES}
    assert {"local-2.yaml", "emulated-hetero.yaml", "testbed-5.yaml", "ec2-small.yaml", "ssh-example.yaml"} <= names
    kinds = {load_spec(p).kind for p in EXAMPLES}
    assert kinds == set(KINDS)


def test_emulated_example_has_a_full_and_a_half_cpu_group_with_a_delay():
    spec = load_spec("emulated-hetero")
    shares = sorted(g.cpu_share for g in spec.worker_groups)
    assert shares == [0.5, 1.0]
    assert any(g.link_delay > 0 for g in spec.worker_groups)


def test_worker_groups_are_advertised_as_names_and_resources():
    spec = parse_spec({"kind": "local", "worker_groups": [group(name="big", threads=4), group(name="small", count=2)]})
    assert spec.worker_names() == ["big-0", "small-0", "small-1"]
    assert spec.worker_groups[0].resources == {"big": 4.0}
    assert spec.n_workers == 3


@pytest.mark.parametrize("raw, message", [
    ({"kind": "local", "worker_groups": [group()], "colour": "red"}, "unknown key 'colour'"),
    ({"kind": "cloud", "worker_groups": [group()]}, "kind: expected one of local, emulated, testbed, ec2, ssh"),
    ({"kind": "local"}, "worker_groups: expected a non-empty list"),
    ({"kind": "local", "worker_groups": [group(thread=2)]}, "unknown key 'thread'"),
    ({"kind": "local", "worker_groups": [group(count=0)]}, "count: must be >= 1"),
    ({"kind": "local", "worker_groups": [group(threads="two")]}, "threads: expected an integer"),
    ({"kind": "local", "worker_groups": [group(memory_limit="lots")]}, "memory_limit must be a size"),
    ({"kind": "local", "worker_groups": [group(name="Big Box")]}, "name: expected a lower-case identifier"),
    ({"kind": "local", "worker_groups": [group(), group()]}, "duplicate group name 'g'"),
    ({"kind": "local", "worker_groups": [group(cpu_share=0.5)]}, "cpu_share applies only to kind emulated"),
    ({"kind": "emulated", "worker_groups": [group(cpu_share=0)]}, "cpu_share: must be >= 0.01"),
    ({"kind": "emulated", "worker_groups": [group(link_delay=-1)]}, "link_delay (seconds): must be >= 0"),
    ({"kind": "emulated", "worker_groups": [group(instance_type="t3.small")]}, "instance_type applies only to kind ec2"),
    ({"kind": "ec2", "worker_groups": [group()], "ec2": EC2}, "instance_type is required for ec2"),
    ({"kind": "ec2", "worker_groups": [group(instance_type="t3.small")]}, "needs an ec2 section"),
    ({"kind": "ec2", "worker_groups": [group(instance_type="t3.small")], "ec2": {**EC2, "ami": None}}, "ec2.ami: required"),
    ({"kind": "ec2", "worker_groups": [group(instance_type="t3.small")], "ec2": {"ami": EC2["ami"]}}, "ec2.security_groups: required"),
    ({"kind": "ec2", "worker_groups": [group(instance_type="t3.small")], "ec2": {**EC2, "tls": True}}, "ec2: unknown key 'tls'"),
    ({"kind": "ec2", "worker_groups": [group(instance_type="t3.small")], "ec2": {**EC2, "security": "yes"}}, "ec2.security: expected true or false"),
    ({"kind": "local", "worker_groups": [group()], "ec2": EC2}, "ec2: section applies only to kind ec2"),
    ({"kind": "local", "worker_groups": [group()], "strategy": "fastest"}, "unknown placement strategy 'fastest'"),
])
def test_bad_specs_are_rejected_with_a_message_naming_the_problem(raw, message):
    with pytest.raises(SpecError) as info:
        parse_spec(raw)
    assert message in info.value.message
    assert isinstance(info.value, StockdagError)


def test_errors_from_a_file_name_the_file(write_spec):
    path = write_spec({"kind": "local", "worker_groups": [group(cpus=2)]})
    with pytest.raises(SpecError, match=r"spec\.yaml: worker group 'g': unknown key 'cpus'"):
        load_spec(path)


def test_a_missing_spec_is_a_clear_error():
    with pytest.raises(SpecError, match="not found"):
        load_spec("/nonexistent/spec.yaml")


@pytest.mark.parametrize("path", EXAMPLES, ids=os.path.basename)
def test_plan_of_every_example_runs_offline_and_lists_every_worker(path):
    pl = plan(path)  # network_guard fails the test if anything reached beyond loopback
    names = [m.name for m in pl.machines if m.role == "worker"]
    assert names == pl.spec.worker_names()
    assert all(m.commands for m in pl.machines)
    assert pl.spec.name in pl.text()


def test_ec2_plan_costs_from_the_dated_price_table():
    pl = plan("ec2-small")  # scheduler t3.small + 2 x t3.small + 1 x c5.xlarge
    assert pl.hourly_usd == pytest.approx(3 * 0.0208 + 0.17)
    text = pl.text()
    assert PRICES_DATE in text and "$0.2324 per hour" in text
    worker_cmds = [c for m in pl.machines if m.role == "worker" for c in m.commands]
    assert any('"name": "big-0"' in c and '"resources": {"big": 4.0}' in c and "tls://" in c for c in worker_cmds)
    sched = pl.machines[0].commands
    assert any("--preload stockdag.placement.preload" in c for c in sched)
    assert any("shutdown -h now" in c for c in sched)


def test_ec2_plan_says_when_a_price_is_unknown():
    spec = {"kind": "ec2", "worker_groups": [group(instance_type="x9.huge")], "ec2": EC2}
    pl = plan(spec)
    assert pl.hourly_usd is None
    assert "no price in the table for x9.huge" in pl.text()


def test_emulated_plan_shows_the_cgroup_writes_and_the_delay():
    text = plan("emulated-hetero").text()
    assert "5000" in text  # quota of a 0.5 share over the 10 ms period (v1) or "5000 10000" (v2)
    assert "DASK_STOCKDAG__DEPLOY__LINK_DELAY=0.02" in text
    assert "--protocol delaytcp" in text


def test_cli_plan_prints_the_plan(capsys):
    assert main(["cluster", "plan", "local-2"]) == 0
    out = capsys.readouterr().out
    assert "w-0" in out and "w-1" in out and "estimated cost: $0" in out


def test_cli_plan_json(capsys):
    assert main(["cluster", "plan", "ec2-small", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["kind"] == "ec2" and d["prices_date"] == PRICES_DATE and len(d["machines"]) == 4


def test_cli_bad_spec_is_one_line_and_status_2(capsys, write_spec):
    path = write_spec({"kind": "local", "worker_groups": [group(count=-1)]})
    assert main(["cluster", "plan", path]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("stockdag: error: ") and "count: must be >= 1" in err and "\n" not in err


def test_cli_status_with_nothing_running(capsys, state_dir):
    assert main(["cluster", "status"]) == 0
    assert "no clusters running" in capsys.readouterr().out


def test_cli_down_needs_a_name_or_all(capsys, state_dir):
    assert main(["cluster", "down"]) == 2
    assert "--all" in capsys.readouterr().err
