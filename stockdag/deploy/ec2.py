"""``kind: ec2``: a cluster of EC2 instances through dask-cloudprovider's ``EC2Cluster``, one per worker of every group.

Its safety rules (security groups, TLS, credentials, the shipped wheel, shutdown,
owner tags) are in :doc:`/guides/clusters` (EC2).
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import json
import logging
import re
import sys

import dask
import dask.config

from .. import config
from . import prices, wheel
from .base import Deployment, Machine
from .prices import hourly
from .schema import DeployError, SpecError, number, unknown_keys

logger = logging.getLogger(__name__)

TAG = "stockdag-cluster"
OWNER_TAG = "stockdag-owner"  # who started the instance: AWS caller identity and user@host (see owner())
INSTALL_HINT = "the ec2 kind needs dask-cloudprovider[aws]: pip install 'stockdag[ec2]'"


AMI_ID = re.compile(r"^ami-[0-9a-f]{8,17}$")  # what EC2 accepts (the CLI checks --ami with it too)
SECURITY_GROUP_ID = re.compile(r"^sg-[0-9a-f]{8,17}$")
INSTANCE_TYPE = re.compile(r"^[a-z0-9-]+\.[a-z0-9-]+$")


@dataclasses.dataclass(frozen=True)
class EC2Options:
    """EC2 settings (``ec2:`` section of a spec); see ``experiments/clusters/ec2-small.yaml``.

    ``ami`` and ``security_groups`` are required: dask-cloudprovider's default
    AMI lookup needs the real cloud and its default security-group creation
    fails in 2025.9 (dask-cloudprovider issue #481).
    """

    region: str = "us-east-1"
    ami: str = ""
    security_groups: tuple[str, ...] = ()
    scheduler_instance_type: str = "t3.small"
    iam_instance_profile: str | None = None   # instance profile name: how instances get credentials
    key_name: str | None = None
    subnet_id: str | None = None
    vpc: str | None = None
    docker_image: str | None = None           # None pins ghcr.io/dask/dask:<dask version>-py<python version>
    wheel_bucket: str | None = None           # S3 bucket of yours this checkout's wheel is shipped through (without docker_image)
    security: bool = True                     # TLS between client, scheduler and workers
    auto_shutdown: bool = True
    bootstrap: bool = True                    # instances install Docker at boot (set False for an AMI that has it)
    filesystem_size: int = 40                 # GB of root volume
    max_hours: float = 4.0                    # `plan` warns past this; `up` passes it on as a dashboard note only
    client_cidr: str | None = None            # who may reach the scheduler ports; None: this machine's address /32


def parse_options(raw) -> EC2Options:
    """The checked ``ec2:`` section of a spec."""
    if not isinstance(raw, dict):
        raise SpecError("ec2: a kind ec2 spec needs an ec2 section with at least ami and security_groups")
    unknown_keys("ec2", raw, [f.name for f in dataclasses.fields(EC2Options)])
    vals = dict(raw)
    if not isinstance(vals.get("ami"), str) or not AMI_ID.match(vals.get("ami", "")):
        raise SpecError(f"ec2.ami: required, an AMI id such as ami-0123456789abcdef0, got {vals.get('ami')!r} "
                        "(dask-cloudprovider's default AMI lookup needs the real cloud)")
    sgs = vals.get("security_groups")
    if isinstance(sgs, str):
        sgs = [sgs]
    if not sgs or not all(isinstance(s, str) and SECURITY_GROUP_ID.match(s) for s in sgs):
        raise SpecError(f"ec2.security_groups: required, a list of security group ids (sg-...), got {vals.get('security_groups')!r} "
                        "(dask-cloudprovider 2025.9 fails to create a default group, upstream issue #481)")
    vals["security_groups"] = tuple(sgs)
    for key in ("security", "auto_shutdown", "bootstrap"):
        if key in vals and not isinstance(vals[key], bool):
            raise SpecError(f"ec2.{key}: expected true or false, got {vals[key]!r}")
    for key in ("region", "scheduler_instance_type", "iam_instance_profile", "key_name", "subnet_id", "vpc",
                "docker_image", "client_cidr", "wheel_bucket"):
        if key in vals and vals[key] is not None and not isinstance(vals[key], str):
            raise SpecError(f"ec2.{key}: expected a string, got {vals[key]!r}")
    if "filesystem_size" in vals:
        number("ec2.filesystem_size", vals["filesystem_size"], kind=int, low=8, high=16384)
    if "max_hours" in vals:
        vals["max_hours"] = number("ec2.max_hours", vals["max_hours"], low=0.0, low_open=True)
    return EC2Options(**vals)


def docker_image(spec) -> str:
    """The spec's image, or the dask image of this machine's dask and Python versions."""
    v = sys.version_info
    return spec.options.docker_image or f"ghcr.io/dask/dask:{dask.__version__}-py{v.major}.{v.minor}"


def _env_vars(spec, wheel_file: str | None = None) -> dict:
    # the shipped wheel's path and Dask settings only: never credentials (env vars land in user-data, readable on the instance)
    from ..run.worker_settings import worker_env

    install = {} if spec.options.docker_image else {"EXTRA_PIP_PACKAGES": wheel.pip_spec(wheel_file or wheel.wheel_name())}
    return {**install, **worker_env()}


def _shipping(spec) -> dict:
    """EC2Cluster options that ship this checkout's wheel (none but env_vars with a docker_image); uploads it."""
    e = spec.options
    if e.docker_image:
        return {"env_vars": _env_vars(spec)}
    if not e.wheel_bucket:
        raise DeployError("ec2.wheel_bucket: required without ec2.docker_image (stockdag is not on the public package "
                          "index: the instances install this checkout's wheel, shipped through an S3 bucket of yours)")
    shipped = wheel.ship(e.region, e.wheel_bucket, e.max_hours * 3600 + 3600)
    return {"env_vars": _env_vars(spec, shipped.filename), "docker_args": wheel.docker_args(),
            # JSON strings are YAML scalars: the URL's characters stay out of the cloud-init YAML's syntax
            "extra_bootstrap": [json.dumps(c) for c in wheel.bootstrap(shipped)]}


def _scheduler_options(spec, extra: dict | None = None) -> dict:
    opts = {"preload": "stockdag.placement.preload"} if spec.strategy and spec.strategy != "dask" else {}
    return {**opts, **(extra or {})}


def _worker_options(group) -> dict:
    return {"nthreads": group.threads, "memory_limit": group.memory_limit, "resources": group.resources}


def plan_machines(spec):
    """Instances and the commands their user-data runs (the same strings the cluster renders), without any call."""
    e = spec.options
    image = docker_image(spec)
    env = " ".join(f'-e {k}="{v}"' for k, v in _env_vars(spec).items())
    proto = "tls" if e.security else "tcp"
    mount = "" if e.docker_image else wheel.docker_args() + " "  # the template puts docker_args after the env vars
    run = f"docker run --net=host {env + ' ' if env else ''}{mount}{image}"
    boot = ["(bootstrap: install docker-ce)"] if e.bootstrap else []
    if not e.docker_image:
        boot.append(f"(fetch this checkout's wheel from s3://{e.wheel_bucket or '<ec2.wheel_bucket>'}/stockdag-wheels/<sha256>/"
                    f"{wheel.wheel_name()} through a presigned URL into {wheel.FOLDER}, and check its SHA-256)")
    off = ["shutdown -h now   # auto_shutdown: the instance terminates when Dask exits"] if e.auto_shutdown else []
    sched_flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in _scheduler_options(spec).items())
    machines = [Machine("scheduler", "scheduler", e.scheduler_instance_type,
                        boot + [f"{run} python -m distributed.cli.dask_scheduler {sched_flags}".rstrip()
                                + ("   # strategy " + spec.strategy + " via inherited config" if spec.strategy else "")] + off,
                        hourly(e.scheduler_instance_type))]
    for g in spec.worker_groups:
        for name in g.worker_names():
            opts = json.dumps({"cls": "dask.distributed.Nanny", "opts": {**_worker_options(g), "name": name}})
            machines.append(Machine("worker", name, g.instance_type,
                                    boot + [f"{run} python -m distributed.cli.dask_spec {proto}://<scheduler ip>:8786 --spec '{opts}'"] + off,
                                    hourly(g.instance_type)))
    notes = [f"region {e.region}; AMI {e.ami}; security groups {', '.join(e.security_groups)} (must allow 8786-8787 "
             f"from {e.client_cidr or 'this machine'} only, and worker-to-worker traffic)",
             f"TLS {'on' if e.security else 'OFF'}; auto_shutdown {'on' if e.auto_shutdown else 'OFF'}; "
             f"credentials: {'instance profile ' + e.iam_instance_profile if e.iam_instance_profile else 'none (no instance profile given)'}",
             f"every instance and volume tagged {TAG}=<cluster id> and {OWNER_TAG}=<you>; `stockdag cluster down --all --spec SPEC` terminates yours by tag"]
    if not e.docker_image and not e.wheel_bucket:
        notes.append("set ec2.wheel_bucket (or ec2.docker_image): `cluster up` refuses without one, as stockdag is not on the public package index")
    unknown = sorted({m.where for m in machines if m.hourly_usd is None})
    if unknown:
        notes.append(f"no price in the table for {', '.join(unknown)}: the estimate is incomplete")
    total = sum(m.hourly_usd or 0 for m in machines)
    notes.append(f"at most ${total * e.max_hours:.2f} for max_hours {e.max_hours:g}")
    if e.region != "us-east-1":
        notes.append(f"prices are us-east-1's; {e.region} differs")
    return machines, notes


@functools.cache
def cloud_classes():
    """``(Cluster, Scheduler, Worker)``: dask-cloudprovider's EC2 classes, extended for worker groups.

    Subclass the Scheduler or Worker (``create_vm``/``destroy_vm``) to change
    how instances start, e.g. the tests run each instance's command locally.
    """
    try:
        from dask_cloudprovider.aws.ec2 import EC2Cluster, EC2Scheduler, EC2Worker
    except ImportError as exc:
        raise ImportError(f"{INSTALL_HINT} ({exc})") from exc

    class Scheduler(EC2Scheduler):
        async def destroy_vm(self):
            if self.instance is not None:  # None: run_instances itself failed
                await super().destroy_vm()

    class Worker(EC2Worker):
        def __init__(self, *args, dask_name: str, **kwargs):
            super().__init__(*args, **kwargs)
            # the Dask worker name is <group>-<i>; the EC2 Name tag keeps the cluster's prefix
            self.command = self.command.replace(json.dumps({"name": self.name})[1:-1], json.dumps({"name": dask_name})[1:-1])
            self.name = f"dask-{self.cluster.uuid}-{dask_name}"
            self.dask_name = dask_name

        async def destroy_vm(self):
            if self.instance is not None:
                await super().destroy_vm()

    class Cluster(EC2Cluster):
        """EC2Cluster with one worker spec entry a worker of every group (``groups``: spec worker groups)."""

        def __init__(self, *args, groups=(), scheduler_cls=Scheduler, worker_cls=Worker, **kwargs):
            self._groups = tuple(groups)
            self._scheduler_cls, self._worker_cls = scheduler_cls, worker_cls
            super().__init__(*args, n_workers=0, **kwargs)

        async def _start(self):
            self.scheduler_class = self._scheduler_cls
            self.worker_class = self._worker_cls
            await super()._start()  # the scheduler instance; n_workers=0
            try:
                for g in self._groups:
                    for name in g.worker_names():
                        self.worker_spec[name] = {"cls": self.worker_class, "options": {
                            **self.worker_options, "instance_type": g.instance_type,
                            "worker_options": _worker_options(g), "dask_name": name}}
                await self._correct_state()
            except BaseException:
                await self._close()
                raise

    return Cluster, Scheduler, Worker


SCHEDULER_PORTS = (8786, 8787)
_WORLD = ("0.0.0.0/0", "::/0")


def own_address(route_table: str | None = None, interfaces: dict | None = None) -> str | None:
    """This machine's IPv4 address on the interface of its default route, read locally (no packet sent); None if none.

    ``route_table`` is the text of ``/proc/net/route`` and ``interfaces`` what
    :func:`psutil.net_if_addrs` returns; both default to this machine's.
    """
    import socket

    if route_table is None:
        try:
            with open("/proc/net/route") as f:
                route_table = f.read()
        except OSError:
            return None
    if interfaces is None:
        import psutil

        interfaces = psutil.net_if_addrs()
    for line in route_table.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 7 and fields[1] == "00000000" and fields[7] == "00000000":  # destination and mask 0: default
            for a in interfaces.get(fields[0], ()):
                if a.family == socket.AF_INET:
                    return a.address
    return None


def client_network(client_cidr: str | None):
    """The range allowed to reach the scheduler ports: ``client_cidr``, else this machine's own address /32."""
    import ipaddress

    if client_cidr:
        try:
            return ipaddress.ip_network(client_cidr, strict=False)
        except ValueError as exc:
            raise DeployError(f"ec2.client_cidr: not an address range: {exc}") from None
    address = own_address()
    if address is None:
        raise DeployError("ec2.client_cidr: this machine's address is unknown (no IPv4 default route); "
                          "set ec2.client_cidr to the address EC2 sees you connect from, e.g. 203.0.113.7/32")
    return ipaddress.ip_network(f"{address}/32")


def check_security_groups(region: str, group_ids, client_cidr: str | None = None) -> None:
    """Refuse groups that open the scheduler or dashboard port wider than the client (before any instance starts).

    Every address range a rule opens 8786 or 8787 to, directly or through a
    managed prefix list, must lie inside ``client_cidr`` or, without one, be this
    machine's own address (:func:`client_network`): the whole internet, and any
    wider or other range, is refused. Rules naming another security group (the
    cluster's own machines) are fine. A group set that opens the ports to nobody
    is allowed with a warning (the client may reach the scheduler another way, e.g. a VPN).
    """
    import ipaddress

    allowed = client_network(client_cidr)
    ec2 = _boto_client(region)
    resp = ec2.describe_security_groups(GroupIds=list(group_ids))
    reachable = False
    for g in resp["SecurityGroups"]:
        for rule in g.get("IpPermissions", []):
            lo, hi = rule.get("FromPort", 0), rule.get("ToPort", 65535)
            if rule.get("IpProtocol") == "-1":
                lo, hi = 0, 65535
            open_ports = [p for p in SCHEDULER_PORTS if lo <= p <= hi]
            if not open_ports:
                continue
            cidrs = [(r.get("CidrIp"), "") for r in rule.get("IpRanges", [])] + \
                [(r.get("CidrIpv6"), "") for r in rule.get("Ipv6Ranges", [])]
            for pl in rule.get("PrefixListIds", []):
                pages = ec2.get_paginator("get_managed_prefix_list_entries").paginate(PrefixListId=pl["PrefixListId"])
                cidrs += [(e["Cidr"], f" (prefix list {pl['PrefixListId']})") for page in pages for e in page["Entries"]]
            for cidr, via in cidrs:
                if not cidr:
                    continue
                net = ipaddress.ip_network(cidr, strict=False)
                if cidr in _WORLD or net.prefixlen == 0:
                    raise DeployError(f"security group {g['GroupId']} opens port {open_ports[0]} to the whole internet{via}; "
                                      "allow the scheduler and dashboard ports (8786-8787) from your own address only")
                if not (net.version == allowed.version and net.subnet_of(allowed)):
                    raise DeployError(
                        f"security group {g['GroupId']} opens port {open_ports[0]} to {cidr}{via}, wider than "
                        + (f"ec2.client_cidr {client_cidr}" if client_cidr else f"this machine's address {allowed} (behind NAT, or to allow a range: set ec2.client_cidr)")
                        + "; allow the scheduler and dashboard ports (8786-8787) from the client's address only")
                reachable = True
    if not reachable:
        logger.warning("no rule of security group(s) %s opens ports 8786-8787 to %s: this client may not reach the "
                       "scheduler", ", ".join(group_ids), client_cidr or allowed)


def _boto_client(region: str):
    import boto3

    return boto3.client("ec2", region_name=region)


def owner(region: str) -> str:
    """Who is starting instances: the AWS caller identity (STS, the same endpoint as EC2) and this user@host.

    Two people of one AWS account, or one person on two machines, get different
    owners, so that ``cluster down --all`` of one never ends the other's clusters.
    """
    import getpass
    import socket

    import boto3

    arn = boto3.client("sts", region_name=region).get_caller_identity()["Arn"]
    return f"{arn} {getpass.getuser()}@{socket.gethostname()}"[:256]  # EC2's tag value limit


def tagged_instances(region: str, cluster_id: str | None = None, states=("pending", "running", "stopping", "stopped"),
                     owned_by: str | None = None) -> list[str]:
    """Ids of instances tagged by stockdag (with ``cluster_id``: by that cluster; ``owned_by``: of that owner) in those states."""
    tag = [{"Name": f"tag:{TAG}", "Values": [cluster_id]}] if cluster_id else [{"Name": "tag-key", "Values": [TAG]}]
    if owned_by is not None:
        tag.append({"Name": f"tag:{OWNER_TAG}", "Values": [owned_by]})
    resp = _boto_client(region).describe_instances(Filters=tag + [{"Name": "instance-state-name", "Values": list(states)}])
    return [i["InstanceId"] for r in resp["Reservations"] for i in r["Instances"]]


def terminate_tagged(spec, cluster_id: str | None = None, owned_by: str | None = None) -> list[str]:
    """Terminate the stockdag-tagged instances of ``cluster_id`` (else of any stockdag cluster), of ``owned_by`` if
    given, in the spec's region."""
    region = spec.options.region if hasattr(spec, "options") else str(spec)
    ids = tagged_instances(region, cluster_id, owned_by=owned_by)
    if ids:
        _boto_client(region).terminate_instances(InstanceIds=ids)
    return ids


def _import(path: str):
    """The object ``module:attribute`` names."""
    import importlib

    module, _, attr = path.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise DeployError(f"stockdag.deploy.ec2_instances: cannot import {path!r} ({exc})") from None


class EC2Deployment(Deployment):
    """An EC2Cluster per the spec; ``close`` also terminates by tag whatever the cluster did not.

    Parameters
    ----------
    scheduler_cls, worker_cls : classes, optional
        Subclasses of ``cloud_classes()[1:]`` (how an instance is made).
    scheduler_options : dict, optional
        Extra ``dask scheduler`` options (e.g. ``{"port": 8786}``).

    Without arguments, both come from the configuration
    (``stockdag.deploy.ec2_instances``, ``stockdag.deploy.ec2_scheduler_options``),
    so that ``stockdag cluster up``, whose cluster runs in another process, gets them too.
    """

    kind = "ec2"
    Options = EC2Options
    group_keys = ("instance_type",)
    prices_date = prices.PRICES_DATE
    parse_options = staticmethod(parse_options)

    @classmethod
    def check_group(cls, where, raw):
        instance_type = raw.get("instance_type")
        if not isinstance(instance_type, str) or not INSTANCE_TYPE.match(instance_type):
            raise SpecError(f"{where}: instance_type is required for ec2 (e.g. t3.small), got {instance_type!r}")
        return {"instance_type": instance_type}

    @staticmethod
    def plan_machines(spec):
        return plan_machines(spec)

    @classmethod
    def cost_line(cls, plan) -> str:
        total = plan.hourly_usd
        return (f"estimated cost: {f'${total:.4f} per hour' if total is not None else 'unknown (an instance type is not in the price table)'}"
                f" (on-demand {prices.PRICES_REGION} prices of {prices.PRICES_DATE}, instances only; EBS and traffic extra)")

    def __init__(self, spec, cluster_id=None, scheduler_cls=None, worker_cls=None, scheduler_options=None):
        super().__init__(spec, cluster_id)
        self.cluster = None
        hook = config.get("deploy.ec2_instances")
        if hook and scheduler_cls is None and worker_cls is None:
            scheduler_cls, worker_cls = _import(hook)()
        self._classes = (scheduler_cls, worker_cls)
        self._scheduler_options = {**(config.get("deploy.ec2_scheduler_options") or {}), **(scheduler_options or {})}
        self._saved_config = None

    def _start(self) -> None:
        Cluster, Scheduler, Worker = cloud_classes()
        e = self.spec.options
        check_security_groups(e.region, e.security_groups, e.client_cidr)
        shipping = _shipping(self.spec)  # before any instance: a spec that cannot ship the code starts nothing
        tags = {TAG: self.cluster_id, OWNER_TAG: owner(e.region), "stockdag-spec": self.spec.name}
        # EC2Cluster switches this process to TLS through dask.config; put it back on close
        self._saved_config = copy.deepcopy(dask.config.config)
        strategy = {"stockdag.placement.strategy": self.spec.strategy} if self.spec.strategy else {}
        with dask.config.set(strategy):  # inherited by the instances (DASK_INTERNAL_INHERIT_CONFIG)
            self.cluster = Cluster(
                groups=self.spec.worker_groups, scheduler_cls=self._classes[0] or Scheduler,
                worker_cls=self._classes[1] or Worker,
                region=e.region, ami=e.ami, security_groups=list(e.security_groups),
                scheduler_instance_type=e.scheduler_instance_type,
                worker_instance_type=self.spec.worker_groups[0].instance_type,
                vpc=e.vpc, subnet_id=e.subnet_id, key_name=e.key_name, filesystem_size=e.filesystem_size,
                iam_instance_profile={"Name": e.iam_instance_profile} if e.iam_instance_profile else None,
                docker_image=docker_image(self.spec), **shipping,
                bootstrap=e.bootstrap, auto_shutdown=e.auto_shutdown, security=e.security,
                instance_tags=tags, volume_tags=tags,
                scheduler_options=_scheduler_options(self.spec, self._scheduler_options),
                silence_logs=logging.WARNING,
            )
        self.security = self.cluster.security
        self.scheduler_address = self.cluster.scheduler_address
        self.dashboard_link = self.cluster.dashboard_link
        timeout = float(config.get("deploy.ec2_start_timeout"))
        with self.client(timeout=30) as client:
            try:
                client.wait_for_workers(self.spec.n_workers, timeout=timeout)
            except TimeoutError:
                raise DeployError(f"only {len(client.scheduler_info(n_workers=-1)['workers'])} of {self.spec.n_workers} "
                                  f"workers joined within {timeout:g} s; tearing the cluster down") from None

    def _close(self) -> None:
        try:
            if self.cluster is not None:
                self.cluster.close()
        finally:
            try:
                left = terminate_tagged(self.spec, self.cluster_id)
                if left:
                    logger.warning("terminated %d instance(s) of %s left after close: %s", len(left), self.cluster_id, left)
            finally:
                if self._saved_config is not None:
                    dask.config.config.clear()
                    dask.config.config.update(self._saved_config)

    def instances(self, states=("pending", "running", "stopping", "stopped")) -> list[str]:
        """Ids of this cluster's instances (by tag) in those states."""
        return tagged_instances(self.spec.options.region, self.cluster_id, states)
