"""Helpers of the deploy tests: EC2 specs for the mock, its instance list, instances that run locally."""
from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys

WHEEL_BUCKET = "stockdag-test-wheels"
SECRET = "secret-never-in-user-data"  # the AWS secret key of the tests (the key id and token are "testing")


def ec2_spec(sg: str, groups=None, **ec2) -> dict:
    return {
        "name": "ec2-test", "kind": "ec2",
        "worker_groups": groups or [
            {"name": "small", "count": 1, "threads": 1, "memory_limit": "1GiB", "instance_type": "t3.small"},
            {"name": "big", "count": 1, "threads": 2, "memory_limit": "1GiB", "instance_type": "c5.xlarge"},
        ],
        "ec2": {"ami": "ami-0123456789abcdef0", "security_groups": [sg], "iam_instance_profile": "stockdag-workers",
                "bootstrap": False, "wheel_bucket": WHEEL_BUCKET, **ec2},
    }


def running(client) -> list[dict]:
    """Instances of the mock that are not terminated (pending, running, stopping, stopped)."""
    resp = client.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}])
    return [i for r in resp["Reservations"] for i in r["Instances"]]


def local_command(command: str) -> list[str]:
    """The instance's Dask command, runnable here: YAML-escaped quotes undone, this Python instead of the image's."""
    argv = shlex.split(command.replace("''", "'"))
    return [sys.executable if a == "python" else a for a in argv]


def local_classes():
    from stockdag.deploy.ec2 import cloud_classes

    _, Scheduler, Worker = cloud_classes()

    class LocalProcess:
        proc = None

        def _run_locally(self):
            self.proc = subprocess.Popen(local_command(self.command), stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

        def _stop_locally(self):
            if self.proc is not None and self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(timeout=5)

    class LocalScheduler(LocalProcess, Scheduler):
        async def create_vm(self):
            await super().create_vm()  # moto records the instance, its tags and user-data
            self._run_locally()
            return "127.0.0.1", None

        async def destroy_vm(self):
            self._stop_locally()
            await super().destroy_vm()

    class LocalWorker(LocalProcess, Worker):
        async def create_vm(self):
            ip, _ = await super().create_vm()
            self._run_locally()
            return "127.0.0.1", None

        async def destroy_vm(self):
            self._stop_locally()
            await super().destroy_vm()

    class FailingWorker(Worker):
        """Its instance is made, then the group ``bad`` fails, as a worker whose boot goes wrong would."""

        async def create_vm(self):
            result = await super().create_vm()
            if self.dask_name.startswith("bad-"):
                raise RuntimeError(f"injected failure starting {self.dask_name}")
            return result

    return LocalScheduler, LocalWorker, FailingWorker




def local_instance_classes():
    """``(scheduler_cls, worker_cls)`` whose instances run locally: the ``stockdag.deploy.ec2_instances`` hook
    that lets a `cluster up` in another process start the same local instances."""
    scheduler_cls, worker_cls, _ = local_classes()
    return scheduler_cls, worker_cls
