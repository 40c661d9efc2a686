"""Cluster kinds: one registry, and a new kind is one class (its module) plus its spec section.

The toy kind below is registered by the test only (it is not shipped): it shows
that parsing, its section's checks, the dry-run plan with its own prices, and
``start``/``close`` all go through the kind's class, with no list to edit.
"""
from __future__ import annotations

import dataclasses

import pytest

from stockdag.deploy import KINDS, Deployment, SpecError, parse_spec, plan, start
from stockdag.deploy.base import Machine
from stockdag.deploy.ec2 import EC2Deployment
from stockdag.deploy.emulated import EmulatedDeployment
from stockdag.deploy.local import LocalDeployment
from stockdag.deploy.ssh import SSHDeployment
from stockdag.deploy.testbed import TestbedDeployment


def test_the_registry_holds_every_shipped_kind_once():
    assert KINDS == {"local": LocalDeployment, "emulated": EmulatedDeployment, "testbed": TestbedDeployment,
                     "ec2": EC2Deployment, "ssh": SSHDeployment}
    assert all(cls.kind == name for name, cls in KINDS.items())


@dataclasses.dataclass(frozen=True)
class ToyOptions:
    zone: str = "z1"
    hourly_usd: float = 0.25


class ToyDeployment(Deployment):
    """A cloud that starts nothing: it records what was asked of it."""

    kind = "toy"
    Options = ToyOptions
    group_keys = ("instance_type",)
    prices_date = "2026-01-01"
    events: list = []

    @classmethod
    def check_group(cls, where, raw):
        return {"instance_type": raw.get("instance_type", "toy.small")}

    @staticmethod
    def plan_machines(spec):
        return ([Machine("worker", n, f"{spec.options.zone}/{g.instance_type}", [f"toy-run {n}"], spec.options.hourly_usd)
                 for g in spec.worker_groups for n in g.worker_names()], ["toy machines are imaginary"])

    @classmethod
    def cost_line(cls, plan):
        return f"toy cost ${plan.hourly_usd:g}/h"

    def _start(self):
        self.events.append(("start", self.spec.options.zone))
        self.scheduler_address = "toy://scheduler:1"

    def _close(self):
        self.events.append(("close", self.cluster_id))


@pytest.fixture
def toy_kind(monkeypatch):
    monkeypatch.setitem(KINDS, "toy", ToyDeployment)
    ToyDeployment.events = []
    return ToyDeployment


def toy_spec(**section):
    return {"kind": "toy", "name": "toy-cloud", "worker_groups": [{"name": "g", "count": 2, "instance_type": "toy.big"}],
            "toy": section}


def test_a_new_kind_is_one_class_plus_its_spec_section(toy_kind):
    spec = parse_spec(toy_spec(zone="z9"))
    assert spec.options == ToyOptions(zone="z9")
    assert [g.instance_type for g in spec.worker_groups] == ["toy.big"]
    assert spec.to_dict()["toy"] == {"zone": "z9", "hourly_usd": 0.25}

    pl = plan(spec)
    assert [m.where for m in pl.machines] == ["z9/toy.big", "z9/toy.big"]
    assert pl.hourly_usd == 0.5
    assert pl.to_dict()["prices_date"] == "2026-01-01"
    text = pl.text()
    assert "toy cost $0.5/h" in text and "$0.2500/h" in text and "note: toy machines are imaginary" in text

    with start(spec, cluster_id="toy-1") as cluster:
        assert isinstance(cluster, ToyDeployment) and cluster.scheduler_address == "toy://scheduler:1"
    assert toy_kind.events == [("start", "z9"), ("close", "toy-1")]


@pytest.mark.parametrize("raw, message", [
    (toy_spec(zones="z2"), "toy: unknown key 'zones'"),
    ({"kind": "local", "worker_groups": [{"name": "g"}], "toy": {}}, "toy: section applies only to kind toy"),
    ({"kind": "local", "worker_groups": [{"name": "g", "instance_type": "t3.small"}]},
     "instance_type applies only to kind ec2 or toy"),
    ({"kind": "clouds", "worker_groups": [{"name": "g"}]}, "kind: expected one of local, emulated, testbed, ec2, ssh, toy"),
])
def test_a_registered_kind_takes_part_in_every_check(toy_kind, raw, message):
    with pytest.raises(SpecError) as info:
        parse_spec(raw)
    assert message in info.value.message
