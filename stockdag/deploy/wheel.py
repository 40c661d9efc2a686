"""This checkout's wheel, shipped to EC2 instances through the spec's S3 bucket, its SHA-256 checked there.

Instances run exactly this checkout's code, never ``stockdag`` by name from an
index. See :doc:`/guides/clusters` (EC2).
"""
from __future__ import annotations

import atexit
import base64
import dataclasses
import functools
import hashlib
import pathlib
import shutil
import subprocess
import sys
import tempfile

from .schema import DeployError

FOLDER = "/opt/stockdag"  # on the instance, mounted read-only into the container
#: what a wheel is built from: the project files and the folders the package's spec links point into
#: (stockdag/deploy/clusters, stockdag/pipeline/pipelines)
SOURCES = ("setup.cfg", "pyproject.toml", "README.md", "stockdag", "experiments/clusters", "experiments/pipelines")
MAX_URL_SECONDS = 7 * 24 * 3600  # the longest a SigV4 presigned URL lives


@dataclasses.dataclass(frozen=True)
class Shipped:
    """A wheel in S3: its file name, SHA-256 and a presigned download URL."""

    filename: str
    sha256: str
    url: str
    s3_uri: str


def checkout() -> pathlib.Path:
    """The source checkout this stockdag is imported from (DeployError when it is an installed package)."""
    import stockdag

    root = pathlib.Path(stockdag.__file__).resolve().parent.parent
    if not all((root / f).is_file() for f in ("setup.cfg", "pyproject.toml")):
        raise DeployError(f"ec2: stockdag is imported from {root}, not a source checkout, so there is no checkout to "
                          "build a wheel from; set ec2.docker_image to an image with this stockdag installed")
    return root


def _digest(root: pathlib.Path) -> str:
    """A digest of every source file a wheel is built from (path and bytes), to reuse a build within a process."""
    h = hashlib.sha256()
    for name in SOURCES:
        top = root / name
        files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        for p in files:
            h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def build(root: pathlib.Path | None = None) -> pathlib.Path:
    """A wheel of the checkout as it is now (uncommitted changes included), built in a temporary folder."""
    root = root or checkout()
    return _build(str(root), _digest(root))


@functools.cache
def _build(root: str, digest: str) -> pathlib.Path:
    out = pathlib.Path(tempfile.mkdtemp(prefix=f"stockdag-wheel-{digest[:12]}-"))
    atexit.register(shutil.rmtree, out, True)  # kept for this process's later starts, removed when it exits
    with tempfile.TemporaryDirectory() as tmp:
        src = pathlib.Path(tmp) / "src"
        for name in SOURCES:
            here, there = pathlib.Path(root) / name, src / name
            there.parent.mkdir(parents=True, exist_ok=True)
            if here.is_dir():
                shutil.copytree(here, there, symlinks=True, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
            else:
                shutil.copy(here, there)
        proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                               "-q", "-w", str(out), str(src)], capture_output=True, text=True)
    wheels = sorted(out.glob("stockdag-*.whl"))
    if proc.returncode or not wheels:
        last = (proc.stderr.strip().splitlines() or ["no wheel written"])[-1]
        raise DeployError(f"ec2: could not build this checkout's wheel to ship to the instances: {last}")
    return wheels[0]


def ship(region: str, bucket: str, seconds: float) -> Shipped:
    """Build this checkout's wheel, put it in ``bucket`` (once per content) and presign a download valid ``seconds``."""
    import boto3

    wheel = build()
    data = wheel.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    key = f"stockdag-wheels/{sha}/{wheel.name}"
    s3 = boto3.client("s3", region_name=region)
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=data, ChecksumSHA256=_b64(sha))
        url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key},
                                        ExpiresIn=int(min(max(seconds, 60), MAX_URL_SECONDS)))
    except s3.exceptions.ClientError as exc:  # botocore's, through the client (boto3 is what the ec2 extra declares)
        raise DeployError(f"ec2.wheel_bucket: cannot upload this checkout's wheel to s3://{bucket}: "
                          f"{exc.response.get('Error', {}).get('Message') or exc}") from None
    return Shipped(wheel.name, sha, url, f"s3://{bucket}/{key}")


def _b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()


def bootstrap(shipped: Shipped) -> list[str]:
    """The instance's commands before Dask starts: fetch the wheel, keep it only if its SHA-256 matches."""
    path = f"{FOLDER}/{shipped.filename}"
    return [f"mkdir -p {FOLDER}",
            f"curl -fsSL --retry 3 -o {path} '{shipped.url}'",
            f"echo '{shipped.sha256}  {path}' | sha256sum -c - || rm -f {path}"]


def pip_spec(filename: str) -> str:
    """What the container's ``EXTRA_PIP_PACKAGES`` installs: the shipped file, by path, never a name."""
    return f"{FOLDER}/{filename}"


def docker_args() -> str:
    """The container's mount of the folder the wheel is fetched into (read-only)."""
    return f"-v {FOLDER}:{FOLDER}:ro"


def wheel_name() -> str:
    """The file name the wheel will have (for the dry run: no build)."""
    from .. import __version__

    return f"stockdag-{__version__}-py3-none-any.whl"
