"""kind ec2 against moto in server mode: instances, tags, user-data, and nothing left running."""
from __future__ import annotations

import base64
import re

import pytest
from deploy_helpers import SECRET, ec2_spec, running

from stockdag.cli import main
from stockdag.deploy import start
from stockdag.deploy.ec2 import OWNER_TAG, TAG, owner, terminate_tagged

pytestmark = pytest.mark.cloud


def _user_data(client, instance_id: str) -> str:
    attr = client.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
    return base64.b64decode(attr["UserData"]["Value"]).decode()


@pytest.mark.slow
def test_a_real_dask_cluster_forms_through_the_ec2_code_path_and_is_terminated(ec2_mock, local_instances, small, free_port):
    from stockdag.pipeline.request import parse_request

    LocalScheduler, LocalWorker, _ = local_instances
    spec = {**ec2_spec(ec2_mock.sg_id), "strategy": "heft"}
    with start(spec, scheduler_cls=LocalScheduler, worker_cls=LocalWorker,
               scheduler_options={"port": free_port, "host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"}) as cluster:
        assert cluster.scheduler_address.startswith("tls://")  # TLS by default
        instances = {i["InstanceId"]: i for i in running(ec2_mock)}
        assert len(instances) == 3
        types = sorted(i["InstanceType"] for i in instances.values())
        assert types == ["c5.xlarge", "t3.small", "t3.small"]  # scheduler t3.small, workers per group
        for i in instances.values():
            tags = {t["Key"]: t["Value"] for t in i.get("Tags", [])}
            assert tags[TAG] == cluster.cluster_id
            assert i["ImageId"] == "ami-0123456789abcdef0"
            groups = {g["GroupId"] for ni in i["NetworkInterfaces"] for g in ni["Groups"]}
            assert groups == {ec2_mock.sg_id}  # the spec's group, passed explicitly (never created by default)
            assert i["IamInstanceProfile"]["Arn"].endswith("stockdag-workers")
            data = _user_data(ec2_mock, i["InstanceId"])
            assert "shutdown -h now" in data  # auto_shutdown
            # no credential in user-data; the wheel's presigned URL carries the key id and session token (not the
            # secret): it authorises that one download, until it expires
            assert "AWS_SECRET_ACCESS_KEY" not in data and SECRET not in data
            without_url = "\n".join(line for line in data.splitlines() if "curl " not in line)
            assert "testing" not in without_url.replace("DASK_INTERNAL", "")
        datas = [_user_data(ec2_mock, i) for i in instances]
        assert any("distributed.cli.dask_scheduler" in d and "--preload stockdag.placement.preload" in d for d in datas)
        assert any('"name": "big-0"' in d and '"resources": {"big": 2.0}' in d for d in datas)
        with cluster.client() as client:
            names = sorted(w["name"] for w in client.scheduler_info(n_workers=-1)["workers"].values())
            assert names == ["big-0", "small-0"]
            with cluster.executor(client=client) as ex:
                result = ex.run(parse_request("AAPL", "2012-06-01"))
            assert result.prediction.symbol == "AAPL"
            assert {t.planned_worker for t in result.trace} - {None}  # heft, loaded by the preload, planned it
    assert running(ec2_mock) == []


@pytest.mark.slow
def test_a_start_that_fails_half_way_terminates_everything_it_started(ec2_mock, local_instances, free_port):
    LocalScheduler, _, FailingWorker = local_instances
    groups = [{"name": "ok", "count": 1, "threads": 1, "memory_limit": "1GiB", "instance_type": "t3.small"},
              {"name": "bad", "count": 1, "threads": 1, "memory_limit": "1GiB", "instance_type": "m5.large"}]
    with pytest.raises(RuntimeError, match="injected failure"):
        with start(ec2_spec(ec2_mock.sg_id, groups), scheduler_cls=LocalScheduler, worker_cls=FailingWorker,
                   scheduler_options={"port": free_port, "host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"}):
            pytest.fail("the cluster started although a worker failed")
    all_instances = ec2_mock.describe_instances()["Reservations"]
    assert sum(len(r["Instances"]) for r in all_instances) == 3  # scheduler + 2 workers were made ...
    assert running(ec2_mock) == []                                # ... and none is left


def _tagged(client, owner=None):
    tags = [{"Key": TAG, "Value": "orphan-1"}] + ([{"Key": OWNER_TAG, "Value": owner}] if owner else [])
    made = client.run_instances(ImageId="ami-0123456789abcdef0", InstanceType="t3.small", MinCount=1, MaxCount=1,
                                TagSpecifications=[{"ResourceType": "instance", "Tags": tags}] if tags else [])
    return made["Instances"][0]["InstanceId"]


def test_down_all_terminates_the_callers_own_tagged_instances_only(ec2_mock, state_dir, write_spec, capsys):
    me = owner("us-east-1")
    mine = {_tagged(ec2_mock, me), _tagged(ec2_mock, me)}
    others = {_tagged(ec2_mock, "arn:aws:iam::123456789012:user/someone-else alice@other-host"),  # another's cluster
              _tagged(ec2_mock),                                                                # untagged owner
              ec2_mock.run_instances(ImageId="ami-0123456789abcdef0", InstanceType="t3.small",
                                     MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]}     # not stockdag's
    path = write_spec(ec2_spec(ec2_mock.sg_id), "ec2")
    assert main(["cluster", "down", "--all", "--spec", path, "--yes"]) == 0
    out = capsys.readouterr().out
    assert {line.rsplit(" ", 1)[1] for line in out.splitlines() if "terminated orphan instance" in line} == mine
    assert {i["InstanceId"] for i in running(ec2_mock)} == others  # not the caller's: untouched
    assert terminate_tagged("us-east-1", owned_by=me) == []


def test_down_all_without_yes_and_without_a_terminal_refuses_in_one_line(ec2_mock, state_dir, write_spec, capsys, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal: nobody to ask
    mine = _tagged(ec2_mock, owner("us-east-1"))
    path = write_spec(ec2_spec(ec2_mock.sg_id), "ec2")
    assert main(["cluster", "down", "--all", "--spec", path]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "add --yes" in err and mine in err
    assert [i["InstanceId"] for i in running(ec2_mock)] == [mine]


def test_down_all_asks_before_terminating_and_a_no_leaves_them(ec2_mock, write_spec):
    from stockdag.deploy import DeployError
    from stockdag.deploy.orphans import terminate_orphans

    mine = _tagged(ec2_mock, owner("us-east-1"))
    path = write_spec(ec2_spec(ec2_mock.sg_id), "ec2")
    asked = []
    with pytest.raises(DeployError, match="left 1 instance.* running"):
        list(terminate_orphans([path], ask=lambda q: asked.append(q) or False))
    assert mine in asked[0] and [i["InstanceId"] for i in running(ec2_mock)] == [mine]
    assert list(terminate_orphans([path], ask=lambda q: True)) == [mine]
    assert running(ec2_mock) == []


def test_a_started_cluster_tags_its_instances_with_their_owner(ec2_mock, here_203_0_113_7):
    """The tag that scopes `down --all`: checked on the instances the ec2 code path makes (no Dask started)."""
    from stockdag.deploy.ec2 import cloud_classes

    _, Scheduler, _ = cloud_classes()

    class StopAfterTheScheduler(Scheduler):
        async def create_vm(self):
            await super().create_vm()
            raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        with start(ec2_spec(ec2_mock.sg_id), scheduler_cls=StopAfterTheScheduler):
            pytest.fail("started although the scheduler failed")
    assert running(ec2_mock) == []
    [inst] = ec2_mock.describe_instances()["Reservations"][0]["Instances"]
    tags = {t["Key"]: t["Value"] for t in inst["Tags"]}
    assert tags[OWNER_TAG] == owner("us-east-1") and "@" in tags[OWNER_TAG]


def test_a_security_group_open_to_the_world_is_refused_before_any_instance(ec2_mock, local_instances, here_203_0_113_7):
    from stockdag.deploy import DeployError

    ec2_mock.authorize_security_group_ingress(GroupId=ec2_mock.sg_id, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8786, "ToPort": 8787, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    with pytest.raises(DeployError, match="opens port 8786 to the whole internet"):
        with start(ec2_spec(ec2_mock.sg_id)):
            pytest.fail("started with a world-open security group")
    assert ec2_mock.describe_instances()["Reservations"] == []


@pytest.fixture
def here_203_0_113_7(monkeypatch):
    """This machine's default-route address, as :func:`own_address` reads it, is 203.0.113.7."""
    from stockdag.deploy import ec2

    monkeypatch.setattr(ec2, "own_address", lambda: "203.0.113.7")


def test_a_security_group_open_to_this_machine_only_is_accepted(ec2_mock, here_203_0_113_7):
    from stockdag.deploy.ec2 import check_security_groups

    ec2_mock.authorize_security_group_ingress(GroupId=ec2_mock.sg_id, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8786, "ToPort": 8787, "IpRanges": [{"CidrIp": "203.0.113.7/32"}]}])
    check_security_groups("us-east-1", [ec2_mock.sg_id])


def test_without_client_cidr_another_single_address_is_refused(ec2_mock, here_203_0_113_7):
    """client_cidr None means this machine's own /32, not any one address anywhere."""
    from stockdag.deploy import DeployError
    from stockdag.deploy.ec2 import check_security_groups

    _open(ec2_mock, ec2_mock.sg_id, "198.51.100.9/32")
    with pytest.raises(DeployError, match=r"to 198\.51\.100\.9/32, wider than this machine's address 203\.0\.113\.7/32"):
        check_security_groups("us-east-1", [ec2_mock.sg_id])


def test_without_client_cidr_and_no_default_route_the_check_asks_for_one(ec2_mock, monkeypatch):
    from stockdag.deploy import DeployError, ec2

    monkeypatch.setattr(ec2, "own_address", lambda: None)
    with pytest.raises(DeployError, match="set ec2.client_cidr") as err:
        ec2.check_security_groups("us-east-1", [ec2_mock.sg_id])
    assert "\n" not in str(err.value)


def test_own_address_is_the_default_route_interfaces_ipv4():
    import socket
    from types import SimpleNamespace as A

    from stockdag.deploy.ec2 import own_address

    route = ("Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n"
             "br0\t000012C6\t00000000\t0001\t0\t0\t0\t00FEFFFF\n"
             "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\n")
    ifaces = {"br0": [A(family=socket.AF_INET, address="198.18.0.1")],
              "eth0": [A(family=socket.AF_INET6, address="2001:db8::2"), A(family=socket.AF_INET, address="203.0.113.7")]}
    assert own_address(route, ifaces) == "203.0.113.7"
    assert own_address(route.splitlines()[0] + "\n", ifaces) is None  # no default route


@pytest.mark.parametrize("entries, refused", [
    (["0.0.0.0/0"], "opens port 8786 to the whole internet (prefix list"),
    (["203.0.113.0/24"], "to 203.0.113.0/24 (prefix list"),
    (["203.0.113.7/32"], None),
])
def test_rules_through_a_managed_prefix_list_are_checked(ec2_mock, here_203_0_113_7, entries, refused):
    from stockdag.deploy import DeployError
    from stockdag.deploy.ec2 import check_security_groups

    pl = ec2_mock.create_managed_prefix_list(PrefixListName="clients", AddressFamily="IPv4", MaxEntries=5,
                                             Entries=[{"Cidr": c} for c in entries])["PrefixList"]["PrefixListId"]
    ec2_mock.authorize_security_group_ingress(GroupId=ec2_mock.sg_id, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8786, "ToPort": 8787, "PrefixListIds": [{"PrefixListId": pl}]}])
    if refused:
        with pytest.raises(DeployError, match=re.escape(refused)):
            check_security_groups("us-east-1", [ec2_mock.sg_id])
    else:
        check_security_groups("us-east-1", [ec2_mock.sg_id])


def _open(client, sg, cidr, proto="tcp", lo=8786, hi=8787):
    key, field = ("Ipv6Ranges", "CidrIpv6") if ":" in cidr else ("IpRanges", "CidrIp")
    perm = {"IpProtocol": proto, key: [{field: cidr}]}
    if proto != "-1":
        perm.update(FromPort=lo, ToPort=hi)
    client.authorize_security_group_ingress(GroupId=sg, IpPermissions=[perm])


@pytest.mark.parametrize("cidr, proto, client_cidr, refused", [
    ("::/0", "tcp", None, "opens port 8786 to the whole internet"),
    ("10.0.0.0/8", "tcp", None, "opens port 8786 to 10.0.0.0/8, wider than this machine's address"),
    ("198.51.100.0/24", "-1", "203.0.113.0/24", "opens port 8786 to 198.51.100.0/24, wider than ec2.client_cidr"),
    ("203.0.113.0/24", "tcp", "203.0.113.7/32", "wider than ec2.client_cidr 203.0.113.7/32"),
    ("203.0.113.0/24", "tcp", "203.0.113.0/24", None),
    ("203.0.113.8/29", "tcp", "203.0.113.0/24", None),
    ("2001:db8::1/128", "tcp", "2001:db8::/64", None),
])
def test_security_groups_open_the_scheduler_ports_to_the_client_only(ec2_mock, here_203_0_113_7, cidr, proto, client_cidr, refused):
    from stockdag.deploy import DeployError
    from stockdag.deploy.ec2 import check_security_groups

    _open(ec2_mock, ec2_mock.sg_id, cidr, proto)
    if refused:
        with pytest.raises(DeployError, match=refused.replace(".", r"\.")):
            check_security_groups("us-east-1", [ec2_mock.sg_id], client_cidr)
    else:
        check_security_groups("us-east-1", [ec2_mock.sg_id], client_cidr)


def test_other_ports_and_group_references_are_left_alone_with_a_warning(ec2_mock, caplog):
    from stockdag.deploy.ec2 import check_security_groups

    _open(ec2_mock, ec2_mock.sg_id, "0.0.0.0/0", lo=22, hi=22)  # ssh: not this check's business
    ec2_mock.authorize_security_group_ingress(GroupId=ec2_mock.sg_id, IpPermissions=[
        {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": ec2_mock.sg_id}]}])  # the cluster's own machines
    with caplog.at_level("WARNING", logger="stockdag.deploy.ec2"):
        check_security_groups("us-east-1", [ec2_mock.sg_id], "203.0.113.7/32")
    assert "opens ports 8786-8787 to 203.0.113.7/32" in caplog.text and "may not reach" in caplog.text


def test_a_group_wider_than_client_cidr_is_refused_before_any_instance(ec2_mock, local_instances):
    from stockdag.deploy import DeployError

    _open(ec2_mock, ec2_mock.sg_id, "203.0.113.0/24")
    with pytest.raises(DeployError, match="wider than ec2.client_cidr 203.0.113.7/32"):
        with start(ec2_spec(ec2_mock.sg_id, client_cidr="203.0.113.7/32")):
            pytest.fail("started with a security group wider than client_cidr")
    assert ec2_mock.describe_instances()["Reservations"] == []


@pytest.mark.slow
def test_cluster_up_status_a_request_and_down_each_in_its_own_process(ec2_mock, state_dir, write_spec, free_port, small):
    """TLS clusters from `cluster up` are usable by other processes: the certificates live in the state folder."""
    import json
    import os
    import stat
    import subprocess
    import sys

    path = write_spec(ec2_spec(ec2_mock.sg_id), "ec2")
    here = os.path.dirname(__file__)
    env = {**os.environ,  # the AWS variables point at the moto server (ec2_mock)
           "PYTHONPATH": os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")])),
           "DASK_STOCKDAG__DEPLOY__STATE_DIR": str(state_dir),
           "DASK_STOCKDAG__DEPLOY__EC2_INSTANCES": "deploy_helpers:local_instance_classes",
           "DASK_STOCKDAG__DEPLOY__EC2_SCHEDULER_OPTIONS": json.dumps(
               {"port": free_port, "host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"}),
           **{"DASK_" + k.upper().replace(".", "__"): str(v) for k, v in small.items()}}

    def stockdag(*args):
        proc = subprocess.run([sys.executable, "-c", "import sys; from stockdag.cli import main; sys.exit(main())", *args],
                              env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    info = json.loads(stockdag("cluster", "up", path, "--json"))
    try:
        assert info["scheduler"] == f"tls://127.0.0.1:{free_port}"
        tls = info["tls"]
        folder = os.path.dirname(tls["ca_file"])
        assert os.path.dirname(folder) == str(state_dir)
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
        assert all(stat.S_IMODE(os.stat(tls[k]).st_mode) == 0o600 for k in ("ca_file", "cert", "key"))
        [row] = json.loads(stockdag("cluster", "status", "--json"))
        assert row["alive"] and row["cluster_id"] == info["cluster_id"]
        assert "TLS" in stockdag("cluster", "status")  # the table says where the certificates are
        answer = json.loads(stockdag("predict", "AAPL", "--as-of", "2012-06-01", "--mode", "distributed",
                                     "--scheduler", info["scheduler"], "--json"))
        assert answer["symbol"] == "AAPL" and answer["mode"] == "distributed"
        assert {t["worker"].split("://")[0] for t in answer["trace"]} == {"tls"}  # ran on the cluster's workers
    finally:
        out = stockdag("cluster", "down", info["cluster_id"])
    assert f"stopped {info['cluster_id']}" in out
    assert running(ec2_mock) == []
    assert not os.path.exists(folder) and list(state_dir.iterdir()) == []


class _StopAfterTheScheduler:
    """The ec2 code path up to the scheduler's instance (moto records it and its user-data), then a stop."""

    def __new__(cls):
        from stockdag.deploy.ec2 import cloud_classes

        _, Scheduler, _ = cloud_classes()

        class Stop(Scheduler):
            async def create_vm(self):
                await super().create_vm()
                raise RuntimeError("stop here")

        return Stop


def test_instances_install_exactly_this_checkouts_wheel_never_a_name_from_an_index(ec2_mock, here_203_0_113_7):
    """The user-data fetches a wheel built from this checkout (from the spec's bucket, SHA-256 checked) and
    installs that file; the bytes behind its URL hold this checkout's package files, byte for byte."""
    import hashlib
    import io
    import os
    import pathlib
    import shlex
    import zipfile

    import requests

    import stockdag

    with pytest.raises(RuntimeError, match="stop here"):
        with start(ec2_spec(ec2_mock.sg_id), scheduler_cls=_StopAfterTheScheduler()):
            pytest.fail("started although the scheduler failed")
    [inst] = ec2_mock.describe_instances()["Reservations"][0]["Instances"]
    data = _user_data(ec2_mock, inst["InstanceId"])
    assert "stockdag==" not in data and SECRET not in data
    [pip] = re.findall(r'EXTRA_PIP_PACKAGES=\\?"([^"\\]+)', data)
    assert pip.startswith("/opt/stockdag/stockdag-") and pip.endswith(".whl")  # a file, by path
    assert "-v /opt/stockdag:/opt/stockdag:ro" in data
    [curl] = [line for line in data.splitlines() if "curl " in line]
    url = shlex.split(yaml_scalar(curl))[-1]
    [check] = [line for line in data.splitlines() if "sha256sum -c" in line]
    sha, path = shlex.split(yaml_scalar(check))[1].split()
    assert path == pip
    body = requests.get(url, timeout=30).content  # the moto server on loopback, as the instance would
    assert hashlib.sha256(body).hexdigest() == sha
    root = pathlib.Path(stockdag.__file__).resolve().parent
    with zipfile.ZipFile(io.BytesIO(body)) as whl:
        shipped = {n: whl.read(n) for n in whl.namelist() if n.startswith("stockdag/") and n.endswith((".py", ".yaml"))}
    here = {}
    for folder, _, files in os.walk(root, followlinks=True):  # stockdag/deploy/clusters, stockdag/pipeline/pipelines link into experiments/
        for f in files:
            if f.endswith((".py", ".yaml")) and "__pycache__" not in folder:
                p = pathlib.Path(folder, f)
                here[str(p.relative_to(root.parent))] = p.read_bytes()
    assert shipped == here


def yaml_scalar(line: str) -> str:
    """The command of one cloud-init runcmd item (``- "..."``, a JSON/YAML double-quoted string)."""
    import yaml

    return yaml.safe_load(line.strip())[0]


def test_without_a_wheel_bucket_or_an_image_nothing_starts(ec2_mock, here_203_0_113_7):
    from stockdag.deploy import DeployError

    spec = ec2_spec(ec2_mock.sg_id)
    del spec["ec2"]["wheel_bucket"]
    with pytest.raises(DeployError, match="ec2.wheel_bucket: required without ec2.docker_image") as err:
        with start(spec):
            pytest.fail("started without a way to ship the code")
    assert "\n" not in str(err.value)
    assert ec2_mock.describe_instances()["Reservations"] == []
