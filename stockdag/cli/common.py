"""What several commands share: how a command is declared (:class:`Command`), option groups, checks across options,
one-line errors, reaching a scheduler."""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import Any

from ..errors import InvalidRequest
from ..pipeline.request import PROFILES, SOURCES
from .options import directory, pipeline_spec, positive_float, positive_int, scheduler_address
from .options import strategy as strategy_name


@dataclasses.dataclass(frozen=True)
class Arg:
    """One argument of a command as data: ``parser.add_argument(*flags, **spec)``."""

    flags: tuple[str, ...]
    spec: dict[str, Any]

    def add(self, p) -> None:
        p.add_argument(*self.flags, **self.spec)


def arg(*flags: str, **spec: Any) -> Arg:
    return Arg(flags, spec)


def flag(name: str, help: str) -> Arg:
    """An option that is on when given (``store_true``)."""
    return arg(name, action="store_true", help=help)


@dataclasses.dataclass(frozen=True)
class OneOf:
    """Options of which exactly one (``required``) or at most one may be given."""

    args: tuple[Arg, ...]
    required: bool = True

    def add(self, p) -> None:
        group = p.add_mutually_exclusive_group(required=self.required)
        for a in self.args:
            a.add(group)


@dataclasses.dataclass(frozen=True)
class Command:
    """A command, or an action of one, as data: each command module declares one and ``add`` registers it.

    ``arguments`` holds :class:`Arg` and :class:`OneOf` values, or tuples of them (option groups shared by
    several commands); ``actions`` are the commands under it (``stockdag cluster up``), chosen as ``args.action``.
    """

    name: str
    help: str
    description: str | None = None
    arguments: tuple = ()
    actions: tuple[Command, ...] = ()
    actions_help: str | None = None  # the ACTION line of the command's --help
    json: str | None = None  # the help of its --json flag (print the output as JSON), its last option; None: no --json

    def add(self, sub) -> argparse._SubParsersAction | None:
        """Register on ``sub`` (an ``add_subparsers`` result); return the actions' subparsers, if any."""
        p = sub.add_parser(self.name, help=self.help, description=self.description)
        for a in _flat(self.arguments) + ([flag("--json", self.json)] if self.json else []):
            a.add(p)
        if not self.actions:
            return None
        inner = p.add_subparsers(dest="action", required=True, metavar="ACTION", help=self.actions_help)
        for action in self.actions:
            action.add(inner)
        return inner


def _flat(arguments: tuple) -> list:
    return [x for a in arguments for x in (_flat(a) if isinstance(a, tuple) else [a])]


#: the data source options (checked across by :func:`check_data`)
DATA_OPTIONS = (
    arg("--source", choices=SOURCES, default=None,
        help="where prices and news come from (default: stockdag.data.source; bundled: offline real prices + synthetic headlines)"),
    arg("--data-dir", type=directory, default=None,
        help="folder of <SYMBOL>.csv price files; implies --source csv (default: stockdag.data.data_dir)"),
)
PIPELINE_OPTION = arg("--pipeline", type=pipeline_spec, default=None, metavar="FILE",
                      help="pipeline spec YAML: competing models and extra steps (see experiments/pipelines/; default: "
                           "stockdag.pipeline.spec, else C1-C12 with five models)")
PROFILE_OPTION = arg("--profile", choices=PROFILES, default=None, help="workload profile (default: stockdag.profile)")
#: what a command given --scheduler does to that cluster (stockdag.run.configure_cluster)
INSTALLS = "stockdag installs its placement plugin, 1 ms stream intervals and worker log filter there, for every client of that cluster"


def scheduler_option(help: str) -> Arg:
    return arg("--scheduler", type=scheduler_address, default=None, help=help)


def cluster_options(workers: str = "worker processes of the LocalCluster started for distributed mode (default 2, one thread each)",
                    scheduler: str = "address of a running Dask scheduler to use instead of a LocalCluster, e.g. tcp://10.0.0.5:8786",
                    strategy: str = "job-placement strategy (see stockdag.placement.STRATEGIES; default: stockdag.placement.strategy)",
                    ) -> tuple[Arg, ...]:
    """--workers, --scheduler, --strategy: each implies --mode distributed (:func:`check_cluster`)."""
    implies = "; implies --mode distributed"
    return (arg("--workers", type=positive_int, default=None, help=workers + implies),
            scheduler_option(f"{scheduler}{implies}. {INSTALLS}; DASK_STOCKDAG__CONFIGURE_CLUSTER=false installs nothing"),
            arg("--strategy", type=strategy_name, default=None, help=strategy + implies))


def load_options(users: str) -> OneOf:
    """Open loop (--rate) or closed loop (--users), one of them."""
    return OneOf((arg("--rate", type=positive_float, default=None, help="open loop: requests per second"),
                  arg("--users", type=positive_int, default=None, help=users)))


def pipeline_config(args):
    """A context that makes --pipeline (validated when parsed: a PipelineSpec) stockdag.pipeline.spec."""
    import contextlib

    import dask

    if getattr(args, "pipeline", None) is None:
        return contextlib.nullcontext()
    # the validated spec itself, not the path: requests parsed from a configuration snapshot carry it as is
    return dask.config.set({"stockdag.pipeline.spec": args.pipeline.to_dict()})


def use_pipeline(args):
    """The pipeline spec of this command (--pipeline, set by main, else stockdag.pipeline.spec)."""
    from .. import config
    from ..pipeline.spec import load_pipeline

    return load_pipeline(config.get("pipeline.spec"))


def given(args, *names: str) -> list[str]:
    """The options among ``names`` given on the command line (as --flags)."""
    return [f"--{n.replace('_', '-')}" for n in names if getattr(args, n, None) not in (None, False)]


def check_data(parser, args) -> None:
    if args.data_dir is not None:
        if args.source not in (None, "csv"):
            parser.error(f"--data-dir is a folder of CSV files, for --source csv; not with --source {args.source}")
        args.source = "csv"
    elif args.source == "csv":
        from .. import config

        if not config.get("data.data_dir"):
            parser.error("--source csv needs --data-dir (or stockdag.data.data_dir)")


def check_cluster(parser, args, mode_options: dict[str, tuple[str, ...]]) -> None:
    """Infer ``args.mode`` from the options given, refusing options of another mode."""
    implied = {mode: given(args, *names) for mode, names in mode_options.items()}
    implied = {mode: opts for mode, opts in implied.items() if opts}
    if len(implied) > 1:
        (m1, o1), (m2, o2) = list(implied.items())[:2]
        parser.error(f"{o1[0]} is for --mode {m1} and {o2[0]} for --mode {m2}: give options of one mode")
    for mode, opts in implied.items():
        if args.mode not in (None, mode):
            parser.error(f"{opts[0]} applies to --mode {mode} only, not --mode {args.mode}")
        args.mode = mode
    if getattr(args, "workers", None) is not None and getattr(args, "scheduler", None) is not None:
        parser.error("--workers sizes a LocalCluster started here; it cannot be combined with --scheduler")
    cores = os.cpu_count()
    if getattr(args, "workers", None) and cores and args.workers > cores:
        print(f"stockdag: note: {args.workers} workers on {cores} cores share them: throughput cannot scale past {cores}x",
              file=sys.stderr)


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def yaml_error(path: str, exc: Exception) -> str:
    """One line for a YAML syntax error, with the line and column it was found at."""
    mark = getattr(exc, "problem_mark", None)
    where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{path}{where}: not valid YAML: {getattr(exc, 'problem', None) or one_line(exc)}"


def reach_scheduler(address: str) -> None:
    """Connect to the scheduler at ``address`` once, so that an unreachable one is one clear line, not a traceback.

    Waits at most ``distributed.comm.timeouts.connect``; uses the certificates of a TLS cluster started by
    ``stockdag cluster up``, else the TLS settings of the Dask configuration.
    """
    import asyncio

    import dask
    from dask.utils import parse_timedelta
    from distributed.comm import connect
    from distributed.security import Security

    from ..deploy.service import security_for

    timeout = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), default="seconds")
    security = security_for(address) or Security()  # a TLS cluster of `stockdag cluster up`: its certificates

    async def probe():
        comm = await connect(address, timeout=timeout, **security.get_connection_args("client"))
        await comm.close()

    try:
        asyncio.run(probe())
    except (TimeoutError, OSError, ValueError, TypeError) as exc:
        raise InvalidRequest(f"cannot reach the Dask scheduler at {address}: {one_line(exc)}") from None
