"""What several commands share: option groups, checks across options, one-line errors, reaching a scheduler."""
from __future__ import annotations

import argparse
import os
import sys

from ..errors import InvalidRequest
from ..pipeline.request import SOURCES
from .options import directory, pipeline_spec, positive_int, scheduler_address, strategy


def add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", choices=SOURCES, default=None,
                   help="where prices and news come from (default: stockdag.data.source; bundled: offline real prices + synthetic headlines)")
    p.add_argument("--data-dir", type=directory, default=None,
                   help="folder of <SYMBOL>.csv price files; implies --source csv (default: stockdag.data.data_dir)")


def add_pipeline_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pipeline", type=pipeline_spec, default=None, metavar="FILE",
                   help="pipeline spec YAML: competing models and extra steps (see experiments/pipelines/; default: stockdag.pipeline.spec, else C1-C12 with five models)")


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


def add_cluster_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=positive_int, default=None,
                   help="worker processes of the LocalCluster started for distributed mode (default 2, one thread each); implies --mode distributed")
    p.add_argument("--scheduler", type=scheduler_address, default=None,
                   help="address of a running Dask scheduler to use instead of a LocalCluster, e.g. tcp://10.0.0.5:8786; implies --mode distributed. "
                        "stockdag installs its placement plugin, 1 ms stream intervals and worker log filter there, for every client of that "
                        "cluster; DASK_STOCKDAG__CONFIGURE_CLUSTER=false installs nothing")
    p.add_argument("--strategy", type=strategy, default=None,
                   help="job-placement strategy (see stockdag.placement.STRATEGIES; default: stockdag.placement.strategy); implies --mode distributed")


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
