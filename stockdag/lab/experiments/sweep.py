"""The sweep runner behind ``experiments/sweep.ipynb``.

A sweep is a grid of *configurations* (how the service runs: centralized,
replicated with K processes, or distributed on N workers under a placement
strategy, on the embedded LocalCluster or a cluster spec) crossed with *load
levels* (open-loop rates or closed-loop users) and *repeats*. For each
configuration one server is started (``stockdag serve`` in a process of its own,
on a free loopback port, its log in ``servers/``), warmed up (excluded), and measured from the client side by
``stockdag.lab.bench`` at every load level. Each point's raw records and summary
are written as soon as they exist, so an interrupted sweep resumes where it
stopped: a point whose summary file exists is skipped.

Drift on a shared machine must not turn into a difference between
configurations, so within each repeat the configurations run in a seeded
random order (each repeat its own, recorded in ``config.json`` as
``order``), every block (one configuration's server in one repeat)
re-measures the parallel capacity, and every point records a short CPU-speed
probe (:func:`stockdag.lab.experiments.facts.speed_probe`) that the report
compares with the run's median. On a testbed cluster every point also records
each machine's CPU time and throttling and the host's idle CPU
(:func:`stockdag.deploy.testbed.cpu_usage`), and the report flags a point where
a machine was starved. A point runs for at least ``duration`` and
until it has at least ``min_requests`` measured requests.

Layout of ``<out>/<run_id>/``: ``config.json`` (parameters, versions, git
commit, machine facts), ``points/<point>.parquet`` (raw per-request records,
zstd-compressed) and ``points/<point>.json`` (summary), ``summary.csv``, and
what :func:`stockdag.lab.experiments.report.build` makes from them.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import os
import re
from dataclasses import dataclass, field

import dask
import pandas as pd

from ... import config as sd_config
from ...errors import InvalidRequest
from ...pipeline.modes import CENTRALIZED, DISTRIBUTED, SERVING_MODES
from ...run.isolated import sigterm_unwinds
from ..params import as_list
from . import facts

logger = logging.getLogger(__name__)

MODES = SERVING_MODES  # (stockdag.pipeline.modes owns them; the name stays for the notebooks)


@dataclass(frozen=True)
class Configuration:
    """How the service runs during one part of a sweep."""

    mode: str
    workers: int = 1  # distributed: worker processes; replicated: processes; centralized: 1
    strategy: str | None = None
    cluster: str | None = None  # a cluster spec (stockdag.deploy); None: the embedded LocalCluster
    granularity: str | None = None  # distributed: stockdag.pipeline.granularity; None: the configured one
    pipeline: str | None = None  # a pipeline spec file (stockdag.pipeline.spec); None: the configured one
    batching: str | None = None  # distributed: Dask's stream intervals, a stockdag.run.batching preset; None: configured
    machine: str | None = None  # a testbed cluster's machine the server runs on; None: its `server` machine
    # pinned strategy: stage name or code -> worker name (stockdag.placement.pinned for this server); None: configured
    pinned: dict | None = field(default=None, hash=False)
    server: str | None = None  # how its server runs (SERVERS: process | thread); None: the sweep's SweepParams.server

    def __post_init__(self):
        from ...run.batching import PRESETS

        if self.batching is not None and self.batching not in PRESETS:
            raise ValueError(f"unknown batching {self.batching!r}; choose from {', '.join(PRESETS)}")
        if self.machine is not None and not self.cluster:
            raise ValueError(f"machine {self.machine!r} needs a testbed cluster (cluster: experiments/clusters/testbed-*.yaml)")
        if self.pinned is not None and (self.strategy != "pinned" or not isinstance(self.pinned, dict)):
            raise ValueError("pinned takes a mapping of stage -> worker name, with strategy: pinned")
        if self.server is not None and self.server not in SERVERS:
            raise ValueError(f"unknown server {self.server!r}; choose from {', '.join(SERVERS)}")

    @property
    def label(self) -> str:
        # a configuration that names its server is told apart from its twin served the other way ("centralized [thread]")
        return (self._label() + (f" [{self.server}]" if self.server else "")
                + (f" [{os.path.splitext(os.path.basename(self.pipeline))[0]}]" if self.pipeline else ""))

    def served(self, params: SweepParams) -> str:
        """How its server runs: its own ``server``, else the sweep's (a key of :data:`SERVERS`)."""
        return self.server or params.server

    def _label(self) -> str:
        where = f" @{os.path.splitext(os.path.basename(self.cluster))[0]}" if self.cluster else ""
        on = f" on {self.machine}" if self.machine else ""
        if self.mode == "centralized":  # a centralized server on a cluster's machine runs there, not in this host
            return "centralized" + where + on
        if self.mode == "replicated":
            return f"replicated x{self.workers}"
        grain = f" {self.granularity}" if self.granularity else ""
        batching = f" batching={self.batching}" if self.batching else ""
        mapped = " mapped" if self.pinned else ""
        return f"distributed w{self.workers} {self.strategy}{mapped}{grain}{batching}{where}{on}"

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.label.lower()).strip("-")


@dataclass(frozen=True)
class Point:
    config: Configuration
    loop: str  # "open" (rate) | "closed" (users)
    load: float
    repeat: int

    @property
    def slug(self) -> str:
        load = f"rate{self.load:g}" if self.loop == "open" else f"users{int(self.load)}"
        return f"{self.config.slug}--{load}--r{self.repeat}"


@dataclass
class SweepParams:
    """Every parameter of a sweep (the sweep notebook's parameters, validated)."""

    workers: list[int] = field(default_factory=lambda: [2])
    strategy: list[str] = field(default_factory=lambda: ["dask"])
    mode: list[str] = field(default_factory=lambda: [CENTRALIZED, DISTRIBUTED])
    cluster: str | None = None
    profile: str = "refit"
    rates: list[float] | None = field(default_factory=lambda: [0.5, 1.0, 2.0])
    users: list[int] | None = None
    duration: float = 8.0
    warmup: float = 2.0
    min_requests: int = 30  # a point goes on past duration until it has this many measured requests
    repeats: int = 1
    symbols: list[str] | None = None  # None: the data source's symbols with stockdag.data.min_history days before start
    mix: str = "uniform"
    start: str = "2011-06-01"
    end: str = "2012-12-31"
    cache: str = "lru"
    timeout: float = 30.0  # the server's deadline; the client waits 5 s longer, so the server's 504 arrives first
    seed: int = 0  # seeds the request mix, arrivals and the order of configurations in each repeat
    out: str | None = None  # None: the project's results/ (found from notebooks/ or experiments/ too)
    run_id: str | None = None
    configurations: list[dict] | None = None  # explicit list instead of the mode x workers x strategy grid
    granularity: list[str] | None = None  # distributed configurations x these pipeline granularities; None: the configured one
    pipeline: list[str] | None = None  # every configuration x these pipeline spec files (experiments/pipelines/); None: the configured one
    server: str = "process"  # process: `stockdag serve` in a process of its own, as a user runs it; thread: in the sweep's process (tests)

    def __post_init__(self):
        # papermill -p passes lists as strings: the one rule every notebook reads its lists with
        self.workers = as_list(self.workers, int)
        self.strategy = as_list(self.strategy, str)
        self.mode = as_list(self.mode, str)
        self.rates = as_list(self.rates, float) or None
        self.users = as_list(self.users, int) or None
        if self.symbols is None:
            from ...domain.data.symbols import symbols_with_history

            day_before = (pd.Timestamp(self.start) - pd.Timedelta(days=1)).date()
            self.symbols = symbols_with_history(day_before, int(sd_config.get("data.min_history")))
        self.symbols = [s.upper() for s in as_list(self.symbols, str)]
        self.configurations = as_list(self.configurations)
        if self.configurations is not None:
            if not all(isinstance(c, dict) for c in self.configurations):
                raise ValueError("configurations must be a list of mappings, e.g. "
                                 "'[{mode: distributed, workers: 2, strategy: heft}]'")
        for name in ("duration", "warmup", "timeout"):
            setattr(self, name, float(getattr(self, name)))
        for name in ("repeats", "min_requests", "seed"):
            setattr(self, name, int(getattr(self, name)))
        if self.cluster in ("None", "null", ""):
            self.cluster = None
        from .paths import resolve

        self.out = resolve(None if self.out in ("None", "null", "") else self.out, "results")
        if self.cluster:
            self.cluster = resolve(self.cluster, self.cluster)
        self.granularity = as_list(self.granularity, str) or None
        self.pipeline = as_list(self.pipeline, str) or None
        from ...pipeline.spec import load_pipeline

        for path in self.pipeline or ():
            load_pipeline(path)  # a bad spec fails here, by name, before anything starts
        from ...pipeline.granularity import GRANULARITY_CHOICES

        bad = [g for g in self.granularity or () if g not in GRANULARITY_CHOICES]
        if bad:
            raise ValueError(f"unknown granularity {bad[0]!r}; choose from {', '.join(GRANULARITY_CHOICES)}")
        bad = [m for m in self.mode if m not in MODES]
        if bad:
            raise ValueError(f"unknown mode {bad[0]!r}; choose from {', '.join(MODES)}")
        from ...pipeline.request import PROFILES

        if self.profile not in PROFILES:  # else it would fail only when the first server starts
            raise ValueError(f"unknown profile {self.profile!r}; choose from {', '.join(PROFILES)}")
        if self.server not in SERVERS:
            raise ValueError(f"unknown server {self.server!r}; choose from {', '.join(SERVERS)}")
        if self.configurations:
            self._configurations()  # a bad configuration (an unknown server, batching...) fails here, in one line
        if not self.rates and not self.users:
            raise ValueError("give open-loop rates or closed-loop users (or both)")
        if any(w < 1 for w in self.workers):
            raise ValueError("workers must be >= 1")
        if self.repeats < 1 or self.duration <= 0 or self.warmup < 0 or self.min_requests < 1:
            raise ValueError("repeats >= 1, duration > 0, warmup >= 0 and min_requests >= 1 are required")
        from ...placement.registry import check_strategy

        for s in self.strategy:
            check_strategy(s)  # an InvalidRequest, a ValueError
        if self.run_id is None:
            self.run_id = dt.datetime.now().strftime("%Y%m%d-%H%M%S")

    @classmethod
    def from_yaml(cls, path: str, **overrides) -> SweepParams:
        import yaml

        with open(path) as f:
            data = yaml.safe_load(f) or {}
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"{path}: unknown parameter(s) {', '.join(sorted(unknown))}")
        return cls(**{**data, **{k: v for k, v in overrides.items() if v is not None}})

    def configurations_list(self) -> list[Configuration]:
        configs = self._configurations()
        if not self.pipeline:
            return configs
        return list(dict.fromkeys(dataclasses.replace(c, pipeline=c.pipeline or p) for p in self.pipeline for c in configs))

    def _configurations(self) -> list[Configuration]:
        if self.configurations:
            return [Configuration(**{"cluster": self.cluster, **c}) for c in self.configurations]
        out: list[Configuration] = []
        grains = self.granularity or [None]
        # on a testbed the centralized baseline runs on one of its machines (equal machines); elsewhere in this process
        base = self.cluster if _is_testbed(self.cluster) else None
        for mode in self.mode:
            if mode == "centralized":
                out.append(Configuration("centralized", cluster=base))
            elif mode == "replicated":
                out += [Configuration("replicated", w) for w in self.workers]
            elif self.cluster:  # the spec fixes the workers
                from ...deploy import load_spec

                n = len(load_spec(self.cluster).worker_names())
                out += [Configuration("distributed", n, s, self.cluster, g) for s in self.strategy for g in grains]
            else:
                out += [Configuration("distributed", w, s, None, g) for w in self.workers for s in self.strategy for g in grains]
        return list(dict.fromkeys(out))

    def order(self) -> list[list[Configuration]]:
        """Per repeat, the configurations in the order they run: seeded shuffles, no two repeats alike when avoidable.

        Running them in a fixed order would turn a machine that slows down (or
        warms up) during the sweep into a difference between configurations.
        """
        import random

        configs = self.configurations_list()
        orders: list[list[Configuration]] = []
        for rep in range(self.repeats):
            rng = random.Random(f"{self.seed}|order|{rep}")
            for _ in range(20):  # a few draws to avoid repeating an earlier repeat's order
                order = rng.sample(configs, len(configs))
                if order not in orders:
                    break
            orders.append(order)
        return orders

    def points(self) -> list[Point]:
        """Every point, in the order the sweep runs them (repeat, then the repeat's configuration order, then load)."""
        loads = [("open", r) for r in (self.rates or [])] + [("closed", float(u)) for u in (self.users or [])]
        return [Point(c, loop, load, rep) for rep, order in enumerate(self.order()) for c in order
                for loop, load in loads]


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")
_SECRET_PARAM = re.compile(r"([?&;](?:[^=&;#]*(?:pass|pwd|secret|token|key|auth|cred|sig)[^=&;#]*)=)[^&;#]*", re.I)


def _redact_url(url: str) -> str:
    """``url`` with every credential hidden: the user info's password (or a bare token) and secret-named query values.

    The user info ends at the *last* ``@`` before the query, so a password that
    holds ``/`` or ``@`` is hidden whole (a path with an ``@`` is hidden too:
    over-redacting is the safe side).
    """
    scheme, rest = url.split("://", 1)
    q = rest.find("?", rest.rfind("@") + 1) if "@" in rest else rest.find("?")
    head, query = (rest, "") if q < 0 else (rest[:q], rest[q:])
    at = head.rfind("@")
    if at >= 0:
        user, sep, _ = head[:at].partition(":")
        head = (f"{user}:***" if sep else "***") + head[at:]
    return f"{scheme}://{head}" + _SECRET_PARAM.sub(r"\1***", query)


def _redacted(value):
    """The configuration with URL credentials (e.g. a Redis cache URL's password) replaced, fit to be committed."""
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_redacted(v) for v in value)
    if isinstance(value, str):
        return _URL.sub(lambda m: _redact_url(m.group(0)), value)
    return value


@contextlib.contextmanager
def serving(cfg: Configuration, params: SweepParams, log: str | None = None):
    """Start the service of one configuration; yield (url, facts of the server and cluster, deployment).

    ``deployment``: the started cluster (None on the embedded LocalCluster); a testbed's meters each point's CPU.

    ``cfg.server``, else ``params.server``, says how (:data:`SERVERS`): ``process``, the default, runs
    ``stockdag serve`` in a process of its own, as a user runs it, so the load generator (this process) shares no
    interpreter with the server it measures; its output goes to ``log``. ``thread`` serves from a thread of this
    process (tests, and the before of a run that measures what the process of its own changes).
    """
    with contextlib.ExitStack() as stack:
        info: dict = {}
        scheduler = security = deployment = None
        testbed = _is_testbed(cfg.cluster)
        if cfg.mode != "distributed" and cfg.cluster and not testbed:
            raise ValueError(f"{cfg.label}: only a testbed cluster has machines to run a {cfg.mode} server on")
        if cfg.mode == "replicated" and testbed:
            raise ValueError(f"{cfg.label}: replicas would share one testbed machine; for whole requests on the "
                             "testbed's machines use mode distributed with granularity request")
        if cfg.machine and testbed:
            from ...deploy import load_spec
            from ...deploy.testbed import machines

            names = [m.name for m in machines(load_spec(cfg.cluster))]
            if cfg.machine not in names:
                raise ValueError(f"{cfg.label}: no machine {cfg.machine!r} in {cfg.cluster}; machines: {', '.join(names)}")
        elif cfg.machine:
            raise ValueError(f"{cfg.label}: machine applies to a testbed cluster only")
        if cfg.server and testbed:  # the testbed runs `stockdag serve` on its machine, never in this process
            raise ValueError(f"{cfg.label}: server applies off a testbed only (a testbed's server runs on its machine)")
        if cfg.cluster and (cfg.mode == "distributed" or testbed):
            from ...deploy import start

            # a testbed's baseline needs its machines only, no idle scheduler or workers beside it
            deployment = stack.enter_context(start(cfg.cluster, **({} if cfg.mode == "distributed" else {"dask": False})))
            scheduler, security = deployment.scheduler_address, deployment.security
            info = {"cluster": deployment.info()}
        if cfg.pinned:
            stack.enter_context(dask.config.set({"stockdag.placement.pinned": dict(cfg.pinned)}))
        if cfg.granularity:  # for the server's lifetime (its executor reads it when it starts)
            stack.enter_context(dask.config.set({"stockdag.pipeline.granularity": cfg.granularity}))
        if cfg.batching:  # the server's executor applies these intervals to its cluster when it starts
            from ...run.batching import PRESETS

            stack.enter_context(dask.config.set({"stockdag.batching": PRESETS[cfg.batching]}))
        if cfg.pipeline:  # create_app snapshots the configuration: every request carries this spec
            from ...pipeline.spec import load_pipeline

            stack.enter_context(dask.config.set({"stockdag.pipeline.spec": load_pipeline(cfg.pipeline).to_dict()}))
        if testbed:  # the server on a machine of the testbed, as a user runs it there; the bench stays on this host
            url, server = stack.enter_context(testbed_server(deployment, cfg, params))
            yield url, info | {"server": server}, deployment
            return
        url, server = stack.enter_context(SERVERS[cfg.served(params)](cfg, params, scheduler, security, log))
        yield url, info | {"server": server}, deployment


@contextlib.contextmanager
def _server_thread(cfg: Configuration, params: SweepParams, scheduler, security, log):
    """The service in a thread of this process (uvicorn's ``ServerThread``): what the tests use."""
    from ...serve import ServerThread, create_app

    app = create_app(cfg.mode, replicas=cfg.workers, workers=cfg.workers, scheduler=scheduler,
                     strategy=cfg.strategy, profile=params.profile, deadline=params.timeout,
                     max_in_flight=1024, security=security)
    with ServerThread(app) as server:
        yield server.url, {"how": "thread", "pid": os.getpid()}


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve_argv(cfg: Configuration, params: SweepParams, scheduler, port: int) -> list[str]:
    """The ``stockdag serve`` command line of one configuration."""
    import sys

    argv = [sys.executable, "-m", "stockdag.cli", "serve", "--mode", cfg.mode, "--host", "127.0.0.1",
            "--port", str(port), "--profile", params.profile, "--deadline", f"{params.timeout:g}",
            "--max-in-flight", "1024"]
    if cfg.mode == "replicated":
        argv += ["--replicas", str(cfg.workers)]
    if cfg.mode == "distributed":
        argv += ["--scheduler", scheduler] if scheduler else ["--workers", str(cfg.workers)]
        argv += ["--strategy", cfg.strategy] if cfg.strategy else []
    return argv


@contextlib.contextmanager
def _server_process(cfg: Configuration, params: SweepParams, scheduler, security, log):
    """``stockdag serve`` in a process (and session) of its own, ready once it listens and ``/health`` answers 200.

    It runs with this process's Dask configuration (Dask's ``DASK_INTERNAL_INHERIT_CONFIG``, the
    sweep's overrides included) and, for a TLS cluster, that cluster's client credentials in a
    private temporary folder. When the block ends, by any exit, SIGTERM of the sweep included, it gets
    SIGTERM (uvicorn's graceful shutdown closes its cluster or replicas), then its whole session
    SIGKILL; if the sweep is killed outright, the kernel sends it SIGTERM (:func:`_die_with_parent`).
    """
    import subprocess
    import tempfile

    from ...deploy.state import _save_tls

    with contextlib.ExitStack() as stack:
        inherited = dask.config.config
        if security is not None and getattr(security, "require_encryption", False):
            tls = _save_tls(security, os.path.join(stack.enter_context(tempfile.TemporaryDirectory()), "tls"))
            inherited = dask.config.merge(inherited, {"distributed": {"comm": {"require-encryption": True, "tls": {
                "ca-file": tls["ca_file"], "client": {"cert": tls["cert"], "key": tls["key"]}}}}})
        port = _free_port()
        argv = _serve_argv(cfg, params, scheduler, port)
        env = dict(os.environ, DASK_INTERNAL_INHERIT_CONFIG=dask.config.serialize(inherited))
        log = os.path.abspath(log) if log else os.devnull
        os.makedirs(os.path.dirname(log), exist_ok=True)
        out = stack.enter_context(open(log, "ab"))
        stack.enter_context(sigterm_unwinds())
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True, preexec_fn=_die_with_parent())
        stack.callback(_stop_session, proc, float(sd_config.get("serve.stop_timeout")))
        url = f"http://127.0.0.1:{port}"
        _wait_ready(proc, port, url, f"stockdag serve ({cfg.label})", float(sd_config.get("serve.start_timeout")), log)
        yield url, {"how": "process", "pid": proc.pid, "argv": argv[1:], "log": log}


def _wait_ready(proc, port: int, url: str, what: str, timeout: float, log: str) -> None:
    """Return once ``proc`` itself listens on ``port`` and ``/health`` answers 200; raise, naming ``log``, if it cannot.

    The port must be ``proc``'s (psutil): between :func:`_free_port` and its bind another program
    could take it, and the sweep would measure that program instead.
    """
    import time
    import urllib.error
    import urllib.request

    import psutil

    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} before answering /health: {_last_line(log)} "
                               f"(log: {log})")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not answer /health within {timeout:g} s (log: {log})")
        with contextlib.suppress(psutil.Error):
            if any(c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN
                   for c in psutil.Process(proc.pid).net_connections("tcp")):
                try:
                    with urllib.request.urlopen(url + "/health", timeout=2) as response:
                        if response.status == 200:
                            return
                except (urllib.error.URLError, OSError):  # 503 while it has no workers yet
                    pass
        time.sleep(0.2)


def _last_line(path: str) -> str:
    try:
        with open(path, errors="replace") as f:
            lines = [ln for ln in f.read().splitlines() if ln.strip()]
    except OSError:
        return "no output"
    return lines[-1] if lines else "no output"


def _stop_session(proc, timeout: float) -> None:
    """SIGTERM the server, wait ``timeout`` s for its graceful exit, then SIGKILL whatever its session still holds."""
    import signal
    import subprocess

    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.warning("stockdag serve (pid %s) did not stop within %g s; killing its session", proc.pid, timeout)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # its session: the server and any worker or replica it left behind
    proc.wait()


def _die_with_parent():
    """A ``preexec_fn`` by which the kernel sends the child SIGTERM when the thread that started it dies (Linux).

    The sweep's own teardown cannot run when it is killed with SIGKILL (or a notebook kernel is);
    ``prctl(PR_SET_PDEATHSIG)`` still stops the server then. libc is loaded here, before the fork:
    the child only makes the call. Elsewhere: None (no such call).
    """
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl, parent, sigterm = ctypes.CDLL(None, use_errno=True).prctl, os.getpid(), int(signal.SIGTERM)

    def preexec() -> None:
        prctl(1, sigterm)  # 1: PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the sweep died before the call: nothing would signal this child
            os._exit(1)

    return preexec


#: how the sweep runs a server: ``SweepParams.server`` -> context manager yielding (url, facts)
SERVERS = {"process": _server_process, "thread": _server_thread}

_SERVER_FACTS = {
    "process": "`stockdag serve` in a process and session of its own (a free loopback port, ready at /health 200, "
               "SIGTERM then SIGKILL of its session at the block's end; log in servers/); the load generator runs "
               "in the sweep's process",
    "thread": "in-process uvicorn (stockdag.serve.ServerThread) in the sweep's process, beside the load generator",
    "testbed": "`stockdag serve` on a testbed machine (its `server` machine, or the "
               "configuration's `machine`: its namespace, quota and link), the load generator on this host",
}


def _is_testbed(cluster: str | None) -> bool:
    if not cluster:
        return False
    from ...deploy import load_spec

    return load_spec(cluster).kind == "testbed"


#: the port a testbed server listens on (its machine has a network namespace, so a port space, of its own)
TESTBED_PORT = 8000


def testbed_argv(cfg: Configuration, params: SweepParams, host: str, scheduler: str | None) -> list[str]:
    """``stockdag serve`` of one configuration, bound to its testbed machine's address."""
    import sys

    argv = [sys.executable, "-m", "stockdag.cli", "serve", "--mode", cfg.mode, "--host", host,
            "--port", str(TESTBED_PORT), "--profile", params.profile, "--deadline", f"{params.timeout:g}",
            "--max-in-flight", "1024"]
    if cfg.mode == "distributed":
        argv += ["--scheduler", str(scheduler)] + (["--strategy", cfg.strategy] if cfg.strategy else [])
    if cfg.pipeline:
        argv += ["--pipeline", cfg.pipeline]
    return argv


@contextlib.contextmanager
def testbed_server(deployment, cfg: Configuration, params: SweepParams):
    """``stockdag serve`` on a testbed machine (:meth:`~stockdag.deploy.testbed.TestbedDeployment.serve_on`): its
    namespace, CPU quota and link; yield (url, facts) once ``/health`` answers 200.

    It runs with this process's Dask configuration (the sweep's overrides included, through Dask's
    ``DASK_INTERNAL_INHERIT_CONFIG``). Its machine's quota is lifted while Python boots (unmeasured, and minutes
    at a quarter core) and holds again before anything is measured. The testbed stops it with its machines,
    on every exit path.
    """
    machine = cfg.machine or "server"
    host = deployment.address(machine)
    argv = testbed_argv(cfg, params, host, deployment.scheduler_address)
    url = f"http://{host}:{TESTBED_PORT}"
    env = {"DASK_INTERNAL_INHERIT_CONFIG": dask.config.serialize(dask.config.config)}
    proc = deployment.serve_on(machine, argv, url + "/health", env=env)
    yield url, {"how": "testbed", "machine": machine, "address": host, "argv": argv[1:], "pid": proc.pid}


def _warm(url: str, params: SweepParams, n: int) -> None:
    """Send ``n`` concurrent requests and wait (imports, first fits); not measured."""
    from ..bench import BenchConfig, RequestMix, run

    mix = RequestMix(params.symbols, params.start, params.end, "uniform", seed=params.seed + 10_000)
    run(BenchConfig(url, users=n, requests=n, timeout=max(120.0, params.timeout), mix=mix))


def point_label(point: Point, repeats: int = 1) -> str:
    """What a point runs, for the progress line: ``distributed w2 heft at 1 req/s`` (``, repeat 2/3``)."""
    load = f"{point.load:g} req/s" if point.loop == "open" else f"{int(point.load)} users"
    return f"{point.config.label} at {load}" + (f", repeat {point.repeat + 1}/{repeats}" if repeats > 1 else "")


def run_sweep(params: SweepParams | None = None, *, progress: bool = True, **kwargs) -> str:
    """Run (or resume) a sweep; return its folder. ``kwargs`` build :class:`SweepParams`."""
    from ..bench import BenchConfig, RequestMix, run
    from ..bench.loadgen import default_timeout

    params = params or SweepParams(**kwargs)
    folder = os.path.join(params.out, params.run_id)
    points_dir = os.path.join(folder, "points")
    os.makedirs(points_dir, exist_ok=True)
    cfg_path = os.path.join(folder, "config.json")
    check_resume(cfg_path, params)  # before anything starts: a resumed run must measure the same grid
    git = facts.git_commit(os.path.dirname(os.path.abspath(__file__)))  # this session's code, recorded on each point
    if not os.path.exists(cfg_path):
        from ...pipeline.spec import load_pipeline
        from ...run import worker_settings

        configs = params.configurations_list()
        record = {
            "run_id": params.run_id, "params": dataclasses.asdict(params),
            "stockdag_config": _redacted(sd_config.snapshot()), "versions": facts.versions(),
            "git": git, "machine": facts.machine(),
            "started": dt.datetime.now().isoformat(timespec="seconds"),
            "configurations": [dataclasses.asdict(c) | {"label": c.label} for c in configs],
            # the specs themselves, not only their file names (a file may change after the run)
            "pipelines": {p: load_pipeline(p).to_dict() for p in params.pipeline or ()},
            "order": [[c.label for c in order] for order in params.order()],
            # runs recorded without this key served with Nagle's algorithm on (see report.conditions)
            # "how": the sweep's default; "kinds": what each kind its configurations name is (each point records its own)
            "server": {"how": params.server, "what": _SERVER_FACTS[params.server], "tcp_nodelay": True,
                       **({"kinds": {k: _SERVER_FACTS[k] for k in dict.fromkeys(c.served(params) for c in configs)}}
                          if any(c.server for c in configs) else {}),
                       **({"testbed": _SERVER_FACTS["testbed"]}
                          if any(_is_testbed(c.cluster) for c in configs) else {})},
            # Dask settings of the workers the servers' clusters start (runs without it profiled every worker)
            "worker_settings": worker_settings.facts(),
            "probe": {"what": "facts.speed_probe: seconds of a fixed CPU loop, best of 3, before every point",
                      "capacity": "facts.parallel_capacity re-measured at the start of every block "
                                  "(one configuration's server in one repeat)"},
        }
        with open(cfg_path, "w") as f:
            json.dump(record, f, indent=2, default=str)
    todo = [p for p in params.points() if not os.path.exists(os.path.join(points_dir, p.slug + ".json"))]
    all_blocks = list(dict.fromkeys((p.repeat, p.config) for p in params.points()))
    bar = None
    if progress:  # on stderr: scripts/sweep.sh shows it on the terminal (papermill --log-output)
        from ..progress import PointProgress

        bar = PointProgress(len(params.points()), "sweep points", done=len(params.points()) - len(todo))
    overrides = {"stockdag.cache.backend": params.cache}
    blocks = list(dict.fromkeys((p.repeat, p.config) for p in todo))
    try:
        for repeat, cfg in blocks:
            # the capacity drifts with the machine's load: measured again for every block, beside its points
            capacity = facts.parallel_capacity(n=1_000_000, rounds=2)
            log = os.path.join(folder, "servers", f"{cfg.slug}--r{repeat}.log")
            with dask.config.set(overrides), serving(cfg, params, log) as (url, info, deployment):
                # a testbed's machines: their cgroups' CPU time and throttling, and the host's idle CPU, per point
                meter = getattr(deployment, "cpu_snapshot", None)
                _warm(url, params, 2 * max(1, cfg.workers))
                for point in [p for p in todo if (p.repeat, p.config) == (repeat, cfg)]:
                    mix = RequestMix(params.symbols, params.start, params.end, params.mix, seed=params.seed + point.repeat)
                    bench = BenchConfig(
                        url, rate=point.load if point.loop == "open" else None,
                        users=int(point.load) if point.loop == "closed" else None,
                        duration=params.duration, warmup=params.warmup, min_requests=params.min_requests,
                        timeout=default_timeout({"deadline": params.timeout}),
                        mix=mix, seed=params.seed + point.repeat,
                    )
                    if bar is not None:
                        bar.start(point_label(point, params.repeats))
                    probe_before = facts.speed_probe()
                    cpu_before = meter() if meter else None
                    result = run(bench)
                    cpu = deployment.cpu_usage(cpu_before, meter()) if meter else None
                    probe_after = facts.speed_probe()
                    result.records.to_parquet(os.path.join(points_dir, point.slug + ".parquet"), index=False,
                                              compression="zstd")
                    meta = {"point": point.slug, "config": dataclasses.asdict(cfg) | {"label": cfg.label},
                            "loop": point.loop, "load": point.load, "repeat": point.repeat,
                            "summary": result.summary.to_dict(),
                            "cluster": {k: v for k, v in info.items() if k != "server"},
                            "server": info["server"],  # how the server under test ran (process: pid, argv, log)
                            "probe": {"before_s": probe_before, "after_s": probe_after,
                                      "speed_s": max(probe_before, probe_after), "capacity": capacity,
                                      "block": all_blocks.index((repeat, cfg))},
                            "cpu": cpu,  # testbed: per machine CPU time, quota, throttling; host idle; "starved"
                            "git": git, "finished": dt.datetime.now().isoformat(timespec="seconds")}
                    tmp = os.path.join(points_dir, point.slug + ".json.tmp")
                    with open(tmp, "w") as f:
                        json.dump(meta, f, indent=2, default=str)
                    os.replace(tmp, os.path.join(points_dir, point.slug + ".json"))  # the point is done
                    if bar is not None:
                        bar.done()
    finally:
        if bar is not None:
            bar.close()
    summarize_run(folder)
    return folder


#: parameters that may differ on resume: where the folder was found, not what was measured
RESUME_FREE = ("out",)


def check_resume(cfg_path: str, params: SweepParams) -> None:
    """Refuse to resume the run of ``cfg_path`` with other parameters than it started with (one line says which).

    Its points would be filed under the first parameters; the code may differ (each point records its commit).
    An :class:`~stockdag.errors.InvalidRequest`, so ``stockdag sweep`` prints it as one line (exit 2).
    """
    if not os.path.exists(cfg_path):
        return
    with open(cfg_path) as f:
        recorded = json.load(f).get("params", {})
    # through JSON, as the record was written: tuples become lists, dates strings
    now = json.loads(json.dumps(dataclasses.asdict(params), default=str))
    differ = sorted(k for k in set(recorded) | set(now) if k not in RESUME_FREE and recorded.get(k) != now.get(k))
    if differ:
        k = differ[0]
        raise InvalidRequest(f"{os.path.dirname(cfg_path)} was started with other parameters ({', '.join(differ)}; "
                         f"{k}: {recorded.get(k)!r} recorded, {now.get(k)!r} now): resume it with the same ones, "
                         "or start a new run_id")


def summarize_run(folder: str, write: bool = True) -> pd.DataFrame:
    """One row a point -> ``summary.csv`` (when ``write``), summarised again from the raw records (not from stored summaries)."""
    from ..bench import summarize
    from ..bench.summary import hit_rates

    rows = []
    points_dir = os.path.join(folder, "points")
    for name in sorted(os.listdir(points_dir)):
        if not name.endswith(".json"):
            continue
        with open(os.path.join(points_dir, name)) as f:
            meta = json.load(f)
        stored, c = meta["summary"], meta["config"]
        records = pd.read_parquet(os.path.join(points_dir, meta["point"] + ".parquet"))
        s = summarize(records, url=stored["url"], loop=stored["loop"], rate=stored["rate"], users=stored["users"],
                      arrivals=stored["arrivals"], duration=stored["duration"], warmup=stored["warmup"],
                      timeout=stored["timeout"]).to_dict()
        lat, lat_all = s["latency_ms"], s.get("latency_all_ms", {})
        probe = meta.get("probe") or {}  # runs from before the probes have none
        rows.append({
            "point": meta["point"], "label": c["label"], "mode": c["mode"], "workers": c["workers"],
            "strategy": c["strategy"], "cluster": c["cluster"], "loop": meta["loop"], "load": meta["load"],
            "repeat": meta["repeat"], "offered_rate": s["offered_rate"], "throughput": s["throughput"],
            "requests": s["requests"], "ok": s["ok"], "errors": sum(s["errors"].values()),
            **{f"{k}_ms": v for k, v in lat.items()},
            **{f"all_{k}_ms": v for k, v in lat_all.items()},
            "probe_s": probe.get("speed_s"), "capacity": probe.get("capacity"), "block": probe.get("block"),
            # testbed points: the machines starved during the point ("" none; None: no CPU record, another kind)
            "starved": " ".join(meta["cpu"]["starved"]) if meta.get("cpu") else None,
            # the point's cache hit rates (measured requests): configurations compare at equal cache work
            **{f"{k}_hit_rate": v for k, v in hit_rates(records[~records["warmup"].astype(bool)]).items()},
        })
    frame = pd.DataFrame(rows)
    if write:
        frame.to_csv(os.path.join(folder, "summary.csv"), index=False)
    return frame
