"""Deploy fixtures: spec files in a temp folder, an isolated state folder, a moto EC2 server on loopback.

The EC2 tests talk to moto in server mode (``ThreadedMotoServer`` on 127.0.0.1,
reached through ``AWS_ENDPOINT_URL``): aiobotocore, which dask-cloudprovider
uses, does not work with moto's in-process mock. Its state is reset before
each test. :class:`LocalScheduler` / :class:`LocalWorker` make the mock's
"instances" real: after moto records the instance they run the instance's
Dask command (the one its user-data would run in Docker) as a local process.
"""
from __future__ import annotations

import copy

import dask.config
import pytest
import yaml
from deploy_helpers import SECRET, WHEEL_BUCKET, local_classes


@pytest.fixture
def write_spec(tmp_path):
    """Write a spec mapping to a YAML file; returns its path."""
    def _write(spec: dict, name: str = "spec") -> str:
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(spec))
        return str(path)

    return _write


@pytest.fixture
def state_dir(tmp_path):
    """An empty state folder for `cluster up`; whatever a test left running there is stopped after it."""
    from stockdag.deploy import service

    d = tmp_path / "clusters"
    with dask.config.set({"stockdag.deploy.state_dir": str(d)}):
        yield d
        if list(d.glob("*.json")):
            service.down(all=True)


@pytest.fixture
def restore_dask_config():
    """EC2Cluster switches the process to TLS through dask.config: put everything back after the test."""
    # distributed's and dask-cloudprovider's defaults join dask.config on import: save them too
    pytest.importorskip("dask_cloudprovider.aws.ec2")
    saved = copy.deepcopy(dask.config.config)
    yield
    dask.config.config.clear()
    dask.config.config.update(saved)


@pytest.fixture(scope="session")
def moto_server():
    pytest.importorskip("moto.server")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def ec2_mock(moto_server, monkeypatch, restore_dask_config):
    """A fresh moto EC2 (reset), the AWS environment pointing at it, and a security group; yields a boto3 client."""
    import boto3
    import requests

    requests.post(f"{moto_server}/moto-api/reset", timeout=10).raise_for_status()
    for k, v in {"AWS_ENDPOINT_URL": moto_server, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": SECRET,
                 "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    for k in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    client = boto3.client("ec2", region_name="us-east-1")
    vpc = client.describe_vpcs()["Vpcs"][0]["VpcId"]
    sg = client.create_security_group(GroupName="stockdag-test", Description="test", VpcId=vpc)["GroupId"]
    client.sg_id = sg
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=WHEEL_BUCKET)  # where `up` ships the checkout's wheel
    boto3.client("iam", region_name="us-east-1").create_instance_profile(InstanceProfileName="stockdag-workers")
    yield client


@pytest.fixture
def local_instances():
    pytest.importorskip("dask_cloudprovider")
    return local_classes()


@pytest.fixture
def free_port():
    """A free loopback port (the EC2 scheduler command takes a fixed port)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """One OpenSSH server for the session, on every address of ``sshd_helpers.ADDRESSES``, accepting one key made for it.

    Yields ``{"server", "key", "known_hosts", "dir"}``: ``known_hosts`` lists the host key at every address.
    Skips without ``/usr/sbin/sshd`` (scripts/ensure-sshd.sh installs it); stopped, with every process its
    sessions started, after the session.
    """
    import os

    from sshd_helpers import ADDRESSES, SSHD, SSHServer, keygen

    if not os.access(SSHD, os.X_OK):
        pytest.skip("needs OpenSSH's sshd (scripts/ensure-sshd.sh)")
    checkout = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    d = tmp_path_factory.mktemp("ssh-client")
    key = str(d / "id_ed25519")
    pub = keygen(key)
    server = SSHServer(tmp_path_factory.mktemp("sshd"), ADDRESSES.values(), checkout)
    server.authorize(pub)
    known = d / "known_hosts"
    known.write_text("".join(server.known_hosts_line(a) + "\n" for a in ADDRESSES.values()))
    try:  # start inside: a server that fails half way (or a Ctrl-C while it starts) is stopped too
        server.start()
        yield {"server": server, "key": key, "known_hosts": str(known), "dir": d}
    finally:
        server.remove()
