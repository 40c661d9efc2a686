"""``stockdag`` command line: predict, symbols, train, evaluate, demo, cluster, serve, bench, webapp, sweep, report.

Errors in the user's input or data print one line (``stockdag: error: ...``)
and exit with status 2; no traceback. Options are checked when the command
line is parsed (types, ranges, dates, options that need another option or
mode), before anything starts: each option's value type is in
:mod:`stockdag.cli_options`, the checks across options are ``CHECKS`` here. A
command imports what it runs only when it runs, so ``stockdag --help`` stays fast.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys

from . import __version__
from .bench.vocabulary import ARRIVALS, MIXES
from .cli_options import (
    Parser, directory, host_name, http_url, iso_date, non_negative_float, non_negative_int, port, positive_float,
    pipeline_spec, positive_int, records_file, run_id, scheduler_address, strategies, strategy, symbol,
)
from .errors import InvalidRequest, StockdagError
from .granularity import GRANULARITY_CHOICES
from .modes import PREDICT_MODES
from .modes import SERVING_MODES as SERVE_MODES
from .request import PROFILES, SOURCES


def _add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", choices=SOURCES, default=None,
                   help="where prices and news come from (default: stockdag.data.source, 'bundled': offline real prices + synthetic headlines)")
    p.add_argument("--data-dir", type=directory, default=None,
                   help="folder of <SYMBOL>.csv price files; implies --source csv (default: stockdag.data.data_dir)")


def _add_pipeline_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pipeline", type=pipeline_spec, default=None, metavar="FILE",
                   help="pipeline spec YAML: competing models and extra steps (see experiments/pipelines/; default: stockdag.pipeline.spec, else C1-C12 with five models)")


def _pipeline_config(args):
    """A context that makes --pipeline (validated when parsed: a PipelineSpec) stockdag.pipeline.spec."""
    import contextlib

    import dask

    if getattr(args, "pipeline", None) is None:
        return contextlib.nullcontext()
    # the validated spec itself, not the path: requests parsed from a configuration snapshot carry it as is
    return dask.config.set({"stockdag.pipeline.spec": args.pipeline.to_dict()})


def _use_pipeline(args):
    """The pipeline spec of this command (--pipeline, set by main, else stockdag.pipeline.spec)."""
    from . import config
    from .pipeline_spec import load_pipeline

    return load_pipeline(config.get("pipeline.spec"))


def _add_cluster_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=positive_int, default=None,
                   help="worker processes of the LocalCluster started for distributed mode (default 2, one thread each); implies --mode distributed")
    p.add_argument("--scheduler", type=scheduler_address, default=None,
                   help="address of a running Dask scheduler to use instead of a LocalCluster, e.g. tcp://10.0.0.5:8786; implies --mode distributed")
    p.add_argument("--strategy", type=strategy, default=None,
                   help="job-placement strategy (see stockdag.placement.STRATEGIES; default: stockdag.placement.strategy); implies --mode distributed")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="stockdag", description="Stock-prediction inference pipeline as a Dask graph: run, serve and measure it.")
    parser.add_argument("--version", action="version", version=f"stockdag {__version__}", help="print the version and exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("predict", help="predict the next-day close of a symbol", description="Predict the next-day close of SYMBOL through the pipeline (C1-C12 and five models, or the --pipeline spec).")
    p.add_argument("symbol", type=symbol, help="ticker symbol, e.g. AAPL (see `stockdag symbols`)")
    p.add_argument("--as-of", type=iso_date, default=None, help="YYYY-MM-DD: predict the day after this date (default: the last day of data)")
    p.add_argument("--mode", choices=PREDICT_MODES, default=None,
                   help="centralized: stages one after another in this process; distributed: the Dask graph on a cluster "
                        "(default: distributed when --workers, --scheduler or --strategy is given, else centralized)")
    p.add_argument("--profile", choices=PROFILES, default=None, help="refit: fit models at request time (heavy); pretrained: load models from `stockdag train`")
    _add_data_options(p)
    _add_cluster_options(p)
    _add_pipeline_option(p)
    p.add_argument("--json", action="store_true", help="print the whole response (with the stage trace) as JSON")

    p = sub.add_parser("symbols", help="list the symbols a data source has, with the dates each can be predicted for",
                       description="List the symbols of a data source: for each, its first and last day of prices, and the first as-of "
                                   "date with enough history (stockdag.data.min_history trading days) for a prediction.")
    _add_data_options(p)

    p = sub.add_parser("train", help="fit the pretrained profile's models into the model store",
                       description="Fit the five models of the pretrained profile for each symbol on data up to --train-end, "
                                   "and save them in the model store that `--profile pretrained` loads.")
    p.add_argument("--symbols", type=symbol, nargs="+", default=None, help="symbols to train (default: every symbol of the data source with window/2 days of prices up to --train-end)")
    p.add_argument("--train-end", type=iso_date, default=None, help="last date the models may see, YYYY-MM-DD (default: stockdag.models.train_end)")
    p.add_argument("--store", default=None, help="model store folder (default: stockdag.models.store or ~/.cache/stockdag/models)")
    p.add_argument("--window", type=positive_int, default=None, help="training rows per model (default: stockdag.models.window)")
    _add_data_options(p)
    _add_pipeline_option(p)

    p = sub.add_parser("evaluate", help="walk-forward accuracy of each model, the selector and a naive baseline",
                       description="Walk forward from --start to --end: refit every --step days on the --window days before, "
                                   "predict each next day, and report direction accuracy and MAE per model, for the selector and "
                                   "for a naive 'always up' baseline (no look-ahead).")
    p.add_argument("--symbols", type=symbol, nargs="+", default=None,
                   help="symbols to evaluate (default: every symbol of the data source with --window days of prices before --start)")
    p.add_argument("--start", type=iso_date, default="2011-01-01", help="first test day (default 2011-01-01)")
    p.add_argument("--end", type=iso_date, default="2012-12-31", help="last test day (default 2012-12-31)")
    p.add_argument("--step", type=positive_int, default=20, help="days predicted per refit (default 20)")
    p.add_argument("--window", type=positive_int, default=None, help="training rows per fit (default: stockdag.models.window)")
    _add_data_options(p)
    _add_pipeline_option(p)
    p.add_argument("--json", action="store_true", help="print the metric table as JSON (a list of records; with a spec's interval step, {metrics, interval})")

    p = sub.add_parser("demo", help="run the same requests centralized and distributed and compare latency/throughput",
                       description="Start a LocalCluster, run N distinct requests both ways (warm-up excluded), print latency and throughput with their ratio, and the stage trace of one request.")
    p.add_argument("--requests", type=positive_int, default=16, help="measured requests per phase (default 16)")
    p.add_argument("--workers", type=positive_int, default=None, help="LocalCluster worker processes, one thread each (default 2); not with --scheduler")
    p.add_argument("--in-flight", type=positive_int, default=16, help="concurrent requests in the throughput phase (default 16)")
    p.add_argument("--profile", choices=PROFILES, default=None, help="workload profile (default: stockdag.profile, i.e. refit)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the request mix")
    p.add_argument("--scheduler", type=scheduler_address, default=None, help="use a running Dask scheduler instead of a LocalCluster")
    p.add_argument("--strategies", type=strategies, default=("dask",),
                   help="comma-separated placement strategies compared on the same cluster, e.g. dask,heft,round-robin (default dask); 'all' for every one")
    p.add_argument("--granularity", choices=GRANULARITY_CHOICES, default=None,
                   help="stages per Dask task: stage, branch (each chain fused), request (one task), auto (request on one worker thread, else branch); "
                        "default: stockdag.pipeline.granularity")
    _add_pipeline_option(p)
    p.add_argument("--json", action="store_true", help="print the measurements as JSON")

    p = sub.add_parser("cluster", help="plan, start, list and stop clusters described by a spec (experiments/clusters/*.yaml)",
                       description="Clusters from a spec: kind local (this host), emulated (this host, cgroup CPU shares and link delays; root) or ec2 (dask-cloudprovider).")
    csub = p.add_subparsers(dest="action", required=True, metavar="ACTION", help="plan | up | status | down (each has --help)")
    c = csub.add_parser("plan", help="dry run: what would start, the commands each machine runs, the cost per hour; starts and calls nothing")
    c.add_argument("spec", help="cluster spec: a YAML file or a name in experiments/clusters (e.g. local-2)")
    c.add_argument("--json", action="store_true", help="print the plan as JSON")
    c = csub.add_parser("up", help="start a cluster that keeps running after this command returns; prints its scheduler and dashboard addresses")
    c.add_argument("spec", help="cluster spec: a YAML file or a name in experiments/clusters")
    c.add_argument("--json", action="store_true", help="print the cluster's state as JSON")
    c = csub.add_parser("status", help="list the clusters started with `cluster up` (id, kind, scheduler, dashboard, alive)")
    c.add_argument("--json", action="store_true", help="print the list as JSON")
    c = csub.add_parser("down", help="stop clusters started with `cluster up`")
    c.add_argument("names", nargs="*", help="cluster ids or spec names to stop (see `stockdag cluster status`)")
    c.add_argument("--all", action="store_true", help="stop every recorded cluster (and, for ec2 specs given with --spec, terminate every instance tagged by stockdag)")
    c.add_argument("--spec", action="append", default=[], help="with --all: an ec2 spec whose region to sweep for stockdag-tagged instances (repeatable)")
    _add_serve_bench_parsers(sub)
    _add_webapp_parser(sub)
    _add_experiment_parsers(sub)
    from .simulate.cli import add_parsers as _add_simulate_parsers  # simulate, plan

    COMMANDS.update(_add_simulate_parsers(sub))
    for subparsers in (sub, csub):  # a command without its own description shows its one-line help in --help
        for choice in subparsers._choices_actions:
            command = subparsers.choices[choice.dest]
            command.description = command.description or choice.help[:1].upper() + choice.help[1:] + "."
    return parser


# -- checks across options, run after parsing: an option that cannot apply is an error, or implies its mode
def _given(args, *names: str) -> list[str]:
    """The options among ``names`` given on the command line (as --flags)."""
    return [f"--{n.replace('_', '-')}" for n in names if getattr(args, n, None) not in (None, False)]


def _check_data(parser, args) -> None:
    if args.data_dir is not None:
        if args.source not in (None, "csv"):
            parser.error(f"--data-dir is a folder of CSV files, for --source csv; not with --source {args.source}")
        args.source = "csv"
    elif args.source == "csv":
        from . import config

        if not config.get("data.data_dir"):
            parser.error("--source csv needs --data-dir (or stockdag.data.data_dir)")


def _check_cluster(parser, args, mode_options: dict[str, tuple[str, ...]]) -> None:
    """Infer ``args.mode`` from the options given, refusing options of another mode."""
    implied = {mode: _given(args, *names) for mode, names in mode_options.items()}
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


def _check_predict(parser, args) -> None:
    _check_data(parser, args)
    _check_cluster(parser, args, {"distributed": ("workers", "scheduler", "strategy")})
    args.mode = args.mode or "centralized"
    if args.mode == "distributed" and args.scheduler is None and args.workers is None:
        args.workers = 2  # the LocalCluster's size when none is given


def _check_evaluate(parser, args) -> None:
    _check_data(parser, args)
    if args.start > args.end:
        parser.error(f"--start {args.start} is after --end {args.end}")


def _check_demo(parser, args) -> None:
    if args.workers is not None and args.scheduler is not None:
        parser.error("--workers sizes a LocalCluster started here; it cannot be combined with --scheduler")


def _check_serve(parser, args) -> None:
    _check_data(parser, args)
    _check_cluster(parser, args, {"replicated": ("replicas",), "distributed": ("workers", "scheduler", "strategy")})


def _check_bench(parser, args) -> None:
    from . import config

    if args.users is not None and _given(args, "arrivals", "connections"):
        parser.error(f"{_given(args, 'arrivals', 'connections')[0]} applies to open loop (--rate) only, not --users")
    if args.requests is not None and args.duration is not None:
        parser.error("give --duration or --requests, not both")
    mix_options = _given(args, "mix", "zipf_s", "symbols", "start", "end")
    if args.raw and mix_options:
        parser.error(f"{mix_options[0]} shapes the request mix of a stockdag server; --raw sends the URL as given")
    if args.zipf_s is not None:
        if args.mix not in (None, "zipf"):
            parser.error(f"--zipf-s is the exponent of --mix zipf, not --mix {args.mix}")
        args.mix = "zipf"
    start, end = str(config.get("bench.start", args.start)), str(config.get("bench.end", args.end))
    if start > end:
        parser.error(f"the mix starts ({start}) after it ends ({end}): check --start and --end")


def _check_cluster_command(parser, args) -> None:
    if args.action == "down" and args.spec and not args.all:
        parser.error("--spec sweeps a region for tagged instances, with --all only")


CHECKS = {"predict": _check_predict, "symbols": _check_data, "train": _check_data, "evaluate": _check_evaluate,
          "demo": _check_demo, "serve": _check_serve, "bench": _check_bench, "cluster": _check_cluster_command}


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def yaml_error(path: str, exc: Exception) -> str:
    """One line for a YAML syntax error, with the line and column it was found at."""
    mark = getattr(exc, "problem_mark", None)
    where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{path}{where}: not valid YAML: {getattr(exc, 'problem', None) or _one_line(exc)}"


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

    from .deploy.service import security_for

    timeout = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), default="seconds")
    security = security_for(address) or Security()  # a TLS cluster of `stockdag cluster up`: its certificates

    async def probe():
        comm = await connect(address, timeout=timeout, **security.get_connection_args("client"))
        await comm.close()

    try:
        asyncio.run(probe())
    except (OSError, ValueError, TypeError, asyncio.TimeoutError) as exc:
        raise InvalidRequest(f"cannot reach the Dask scheduler at {address}: {_one_line(exc)}") from None


def _cmd_predict(args) -> int:
    from .request import parse_request
    from .run import CentralizedExecutor, DistributedExecutor

    request = parse_request(args.symbol, args.as_of, profile=args.profile, source=args.source, data_dir=args.data_dir,
                            pipeline=_use_pipeline(args))
    if args.scheduler:  # (a scheduler implies distributed mode)
        reach_scheduler(args.scheduler)
    if args.mode == "centralized":
        result = CentralizedExecutor().run(request)
    else:
        with DistributedExecutor(address=args.scheduler, n_workers=args.workers,
                                 strategy=args.strategy, dashboard_address=None) as ex:
            result = ex.run(request)
    d = result.to_dict()
    if args.json:
        print(json.dumps(d, indent=2))
        return 0
    p = d["prediction"]
    print(f"{d['symbol']} as of {d['as_of']}: close {p['last_close']:.2f} -> predicted next close "
          f"{p['next_close']:.2f} ({100 * p['next_return']:+.2f}%), winner {d['winner']} [{d['mode']}, {d['profile']}]")
    if "note" in d:
        print(f"  note: {d['note']}")
    for c in d["candidates"]:
        mark = "*" if c["model"] == d["winner"] else " "
        print(f"  {mark} {c['model']:<22} return {100 * c['prediction']:+.3f}%   recent MAE {100 * c['recent_error']:.3f}%")
    if "ensemble" in d:
        print(f"  ensemble (C15): return {100 * d['ensemble']['next_return']:+.3f}%, next close {d['ensemble']['next_close']:.2f}")
    if "interval" in d:
        iv = d["interval"]
        bounds = "unbounded (too few calibration days for the level)" if iv["lower_close"] is None else \
            f"next close in [{iv['lower_close']:.2f}, {iv['upper_close']:.2f}]"
        print(f"  {100 * iv['level']:g}% interval (C16, split-conformal on {iv['calibration_days']} days): {bounds}")
    s = d["sentiment"]
    print(f"  sentiment: {s['headlines']} headlines, latest day {s['latest_day']} = {s['latest']:+.3f}; cache: {_cache_text(d['cache'])}")
    return 0


def _cache_text(cache) -> str:
    """``{"prices": "hit", "news": "miss"}`` as ``prices hit, news miss``."""
    if isinstance(cache, dict):
        return ", ".join(f"{k} {v}" for k, v in cache.items()) or "none"
    return str(cache)


def _cmd_symbols(args) -> int:
    from . import config
    from .data.prices import get_price_source

    source_name = config.get("data.source", args.source)
    data_dir = config.get("data.data_dir", args.data_dir)
    source = get_price_source(source_name, data_dir, float(config.get("data.timeout")))
    names = source.symbols()
    if not names:
        if source_name == "csv":
            raise InvalidRequest(f"no price files (<SYMBOL>.csv) in {data_dir}")
        raise InvalidRequest(f"the {source_name} source cannot list its symbols (it answers for one symbol at a time: "
                             f"stockdag predict SYMBOL --source {source_name})")
    min_history = int(config.get("data.min_history"))
    for name in names:
        try:
            frame = source.fetch(name, None, history_days=10**9, min_history=1).frame
        except StockdagError as exc:
            print(f"{name:<8} unreadable: {exc.message}")
            continue
        first, last = frame.index[0].date(), frame.index[-1].date()
        usable = (f"as-of {frame.index[min_history - 1].date()} .. {last}" if len(frame) >= min_history
                  else f"too little history to predict (needs {min_history} days)")
        print(f"{name:<8} prices {first} .. {last} ({len(frame)} days); {usable}")
    return 0


def _cmd_train(args) -> int:
    from . import config
    from .data.symbols import symbols_with_history
    from .models.train import train

    spec = _use_pipeline(args)
    window = config.get("models.window", args.window)
    source, data_dir = config.get("data.source", args.source), config.get("data.data_dir", args.data_dir)
    symbols = args.symbols or symbols_with_history(config.get("models.train_end", args.train_end), int(window) // 2, source, data_dir)
    store = train(symbols, config.get("models.train_end", args.train_end), config.get("models.store", args.store),
                  window=window, source=source, data_dir=data_dir, show_progress=True, pipeline=spec)
    print(f"trained {len(symbols)} symbols x {len(spec.models)} models (pipeline {spec.name}) into {store}")
    return 0


def _cmd_evaluate(args) -> int:
    from . import config
    from .evaluate import evaluate

    spec = _use_pipeline(args)
    ev = evaluate(args.symbols, args.start, args.end, window=config.get("models.window", args.window), step=args.step,
                  source=config.get("data.source", args.source), data_dir=config.get("data.data_dir", args.data_dir),
                  show_progress=not args.json, pipeline=spec)
    if args.json:
        records = json.loads(ev.table.reset_index().to_json(orient="records"))
        # with the interval step: an object with the metric records and the interval's coverage
        print(json.dumps(records if ev.coverage is None else {"metrics": records, "interval": ev.coverage}, indent=2))
    else:
        symbols = list(dict.fromkeys(ev.daily["symbol"]))  # --symbols, or the source's (evaluate's default)
        print(f"walk-forward {args.start}..{args.end}, {', '.join(symbols)} ({len(ev.daily)} predictions); "
              f"selector: C12's winner-takes-all" + (", ensemble: C15's inverse-error weights" if spec.steps.count("ensemble") else ""))
        print(ev.table.to_string(float_format=lambda v: f"{v:.4f}"))
        if ev.coverage is not None:
            c = ev.coverage
            print(f"C16 interval: coverage {c['coverage']:.4f} of {c['days']} days vs nominal {c['level']:g} "
                  f"(mean half-width {c['mean_halfwidth']:.4f})")
    return 0


def _cmd_demo(args) -> int:
    from .demo import compare
    from .run import batching

    _use_pipeline(args)
    client = None
    if args.scheduler:
        from distributed import Client

        from .deploy.service import security_for

        reach_scheduler(args.scheduler)
        client = Client(args.scheduler, security=security_for(args.scheduler))
    try:
        cmp = compare(args.requests, args.workers or 2, args.in_flight, args.profile, seed=args.seed,
                      client=client, show_progress=not args.json, strategies=tuple(args.strategies),
                      granularity=args.granularity)
    finally:
        if client is not None:
            client.close()
    if args.json:
        print(json.dumps({
            "requests": cmp.requests, "workers": cmp.workers, "in_flight": cmp.in_flight, "profile": cmp.profile,
            "centralized_latency": cmp.centralized_latency, "centralized_throughput": cmp.centralized_throughput,
            "distributed": {name: {"latency": r["latency"], "throughput": r["throughput"]} for name, r in cmp.strategies.items()},
            "latency_ratio": cmp.latency_ratio, "throughput_ratio": cmp.throughput_ratio, "machine": cmp.machine,
            "granularity": cmp.granularity, "overhead_per_request": cmp.overhead_per_request,
            "batching": batching.effective(), "pipeline": _use_pipeline(args).to_dict(),
        }, indent=2))
        return 0
    print()
    print(f"{cmp.requests} distinct requests per phase, profile {cmp.profile}, cache off, warm-up excluded; "
          f"machine: {cmp.machine['cores']} cores, {cmp.machine['memory_gib']} GiB")
    print(cmp.table())
    print()
    print(f"stage trace of one distributed request ({cmp.example.prediction.symbol} {cmp.example.prediction.as_of}):")
    print(cmp.trace_table())
    if cmp.machine["cores"] and cmp.workers > cmp.machine["cores"]:
        print(f"\nnote: {cmp.workers} workers on {cmp.machine['cores']} cores: the workers share cores, so throughput cannot scale past {cmp.machine['cores']}x.")
    return 0


def _cmd_cluster(args) -> int:
    from . import deploy
    from .deploy import service

    if args.action == "plan":
        pl = deploy.plan(args.spec)
        print(json.dumps(pl.to_dict(), indent=2) if args.json else pl.text())
    elif args.action == "up":
        info = service.up(args.spec)
        if args.json:
            print(json.dumps(info, indent=2))
        else:
            print(f"cluster {info['cluster_id']} ({info['kind']}) is up; stop it with `stockdag cluster down {info['cluster_id']}`")
            print(f"  scheduler: {info['scheduler']}")
            print(f"  dashboard: {info['dashboard']}")
            print(f"  workers:   {', '.join(info['workers'])}")
    elif args.action == "status":
        rows = service.status()
        if args.json:
            print(json.dumps(rows, indent=2))
        elif not rows:
            print("no clusters running (start one with `stockdag cluster up SPEC`)")
        else:
            print(f"{'CLUSTER':<28} {'KIND':<9} {'STATE':<5} {'WORKERS':>7}  {'SCHEDULER':<26} DASHBOARD")
        for r in rows if not args.json else ():
            print(f"{r['cluster_id']:<28} {r['kind']:<9} {'up' if r['alive'] else 'DEAD':<5} {len(r['workers']):>7}  "
                  f"{r['scheduler']:<26} {r['dashboard']}")
            if r.get("tls"):
                print(f"{'':<28} TLS certificates in {r['tls']['ca_file'].rsplit('/', 1)[0]}/")
    else:
        stopped = service.down(args.names, all=args.all)
        for r in stopped:
            print(f"stopped {r['cluster_id']} ({r['kind']})")
        if args.all:
            from .deploy.ec2 import terminate_tagged

            for spec in args.spec:
                for iid in terminate_tagged(deploy.load_spec(spec)):
                    print(f"terminated orphan instance {iid}")
        if not stopped and not args.spec:
            print("no clusters were running")
    return 0


def _add_serve_bench_parsers(sub) -> None:
    p = sub.add_parser("serve", help="serve predictions over HTTP (FastAPI + uvicorn)",
                       description="Serve GET /predict/{symbol}?as_of=YYYY-MM-DD, /symbols, /health, /metrics and the OpenAPI docs (/docs). "
                                   "Beyond --max-in-flight requests the server answers 503 with Retry-After at once; past --deadline, 504.")
    p.add_argument("--mode", choices=SERVE_MODES, default=None,
                   help="centralized: one request's pipeline at a time in the server process (the baseline); replicated: --replicas "
                        "processes each running whole requests; distributed: many requests in flight on one Dask client (default: "
                        "replicated with --replicas, distributed with --workers, --scheduler or --strategy, else stockdag.serve.mode)")
    p.add_argument("--replicas", type=positive_int, default=None, help="processes of replicated mode (default: stockdag.serve.replicas); implies --mode replicated")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="LocalCluster worker processes of distributed mode, one thread each (default: stockdag.serve.workers); implies --mode distributed")
    p.add_argument("--scheduler", type=scheduler_address, default=None,
                   help="address of a running Dask scheduler for distributed mode instead of a LocalCluster; implies --mode distributed")
    p.add_argument("--strategy", type=strategy, default=None,
                   help="job-placement strategy of distributed mode (see stockdag.placement.STRATEGIES; default: stockdag.placement.strategy); implies --mode distributed")
    p.add_argument("--profile", choices=PROFILES, default=None, help="workload profile (default: stockdag.profile)")
    p.add_argument("--host", type=host_name, default=None, help="address to bind (default: stockdag.serve.host, 127.0.0.1)")
    p.add_argument("--port", type=port(1), default=None, help="TCP port, 1-65535 (default: stockdag.serve.port, 8000)")
    p.add_argument("--max-in-flight", type=positive_int, default=None, help="prediction requests admitted at once, at least 1 (default: stockdag.serve.max_in_flight)")
    p.add_argument("--deadline", type=positive_float, default=None, help="seconds (> 0) before a prediction answers 504 (default: stockdag.serve.deadline)")
    _add_data_options(p)
    _add_pipeline_option(p)

    p = sub.add_parser("bench", help="measure a server from the client side: open or closed loop load, latency percentiles",
                       description="Send requests to URL and report offered rate, achieved throughput, latency percentiles (HDR histogram) and "
                                   "errors by kind. A stockdag server's base URL gets a seeded mix of /predict/{symbol}?as_of= requests; any "
                                   "other URL is requested as given. Open loop (--rate) counts latency from each request's intended send time, "
                                   "so a stalled server cannot hide its stall; closed loop (--users) waits for each answer before the next "
                                   "request, and so hides stalls. Exits with status 1 when no request succeeded.")
    p.add_argument("url", type=http_url, help="server base URL (e.g. http://127.0.0.1:8000) or any http(s) URL to request as given")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--rate", type=positive_float, default=None, help="open loop: requests per second")
    g.add_argument("--users", type=positive_int, default=None, help="closed loop: concurrent users, each sending the next request when the last returns")
    p.add_argument("--arrivals", choices=ARRIVALS, default=None, help="open-loop arrivals (default: stockdag.bench.arrivals); not with --users")
    p.add_argument("--duration", type=positive_float, default=None, help="measured seconds after the warm-up (default: stockdag.bench.duration)")
    p.add_argument("--requests", type=positive_int, default=None, help="send this many measured requests instead of running for --duration")
    p.add_argument("--warmup", type=non_negative_float, default=None, help="seconds of requests excluded from the results (default: stockdag.bench.warmup)")
    p.add_argument("--timeout", type=positive_float, default=None, help="per-request timeout in seconds, counted as error 'timeout' (default: stockdag.bench.timeout, "
                   "else a stockdag server's deadline + 5 s, so its own 504 arrives first; 30 s for other servers)")
    p.add_argument("--connections", type=positive_int, default=None, help="most open connections in open loop (default: stockdag.bench.connections); not with --users")
    p.add_argument("--mix", choices=MIXES, default=None, help="how symbols and dates are drawn (default: stockdag.bench.distribution)")
    p.add_argument("--zipf-s", type=positive_float, default=None, help="Zipf exponent of --mix zipf, implies it (default: stockdag.bench.zipf_s)")
    p.add_argument("--symbols", type=symbol, nargs="+", default=None, help="symbols of the mix, each one the server lists (default: all the server lists)")
    p.add_argument("--start", type=iso_date, default=None, help="first as-of date of the mix (default: stockdag.bench.start)")
    p.add_argument("--end", type=iso_date, default=None, help="last as-of date of the mix (default: stockdag.bench.end)")
    p.add_argument("--seed", type=non_negative_int, default=None, help="seed of the mix and of Poisson arrivals (default: stockdag.bench.seed)")
    p.add_argument("--raw", action="store_true", help="request URL as given even if it is a stockdag server (no mix options then)")
    p.add_argument("--out", type=records_file, default=None, help="write every request's record to this .parquet or .csv file (its folder must exist)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON (no progress bar)")


def _cmd_serve(args) -> int:
    import dask

    from . import config
    from .serve import create_app, serve

    _use_pipeline(args)  # create_app's configuration snapshot carries the spec into every request
    host, port = config.get("serve.host", args.host), int(config.get("serve.port", args.port))
    _check_can_listen(host, port)
    if args.scheduler:
        reach_scheduler(args.scheduler)
    data = {k: v for k, v in {"stockdag.data.source": args.source, "stockdag.data.data_dir": args.data_dir}.items() if v is not None}
    with dask.config.set(data):  # create_app snapshots the configuration (a copy), so the override outlives this block
        app = create_app(args.mode, replicas=args.replicas, workers=args.workers, scheduler=args.scheduler,
                         strategy=args.strategy, profile=args.profile, max_in_flight=args.max_in_flight, deadline=args.deadline)
    print(f"stockdag serve: {app.state.backend.mode} on http://{host}:{port} (docs at /docs); Ctrl-C stops", file=sys.stderr)
    serve(app, host=host, port=port)
    return 0


def _check_can_listen(host: str, port: int) -> None:
    """Bind the address once before anything starts, so that a taken port or a foreign address is one line."""
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            sock.bind(address)
    except OSError as exc:
        raise InvalidRequest(f"cannot listen on {host}:{port}: {exc.strerror or _one_line(exc)}") from None


def _cmd_bench(args) -> int:
    import asyncio

    from . import config
    from .bench import BenchConfig, RequestMix, probe_stockdag, run, write_records
    from .bench.loadgen import default_timeout, stockdag_health

    def cfg(key, value):
        return config.get(f"bench.{key}", value)

    seed = int(cfg("seed", args.seed))
    mix = None
    symbols = None if args.raw else asyncio.run(probe_stockdag(args.url))
    if symbols is None:
        # only a TCP connect: 10 s when no per-request timeout is configured
        asyncio.run(_reach_url(args.url, float(cfg("timeout", args.timeout) or 10)))
        mix_options = _given(args, "mix", "zipf_s", "symbols", "start", "end")
        if mix_options:
            raise InvalidRequest(f"{mix_options[0]} shapes the request mix of a stockdag server, and {args.url} is not one "
                                 "(no /health naming the stockdag service)")
    elif args.symbols:
        unknown = [x for x in args.symbols if x not in symbols]
        if unknown:
            raise InvalidRequest(f"{args.url} does not serve {', '.join(unknown)}; it lists {', '.join(symbols)}")
    timeout = cfg("timeout", args.timeout)
    timeout = float(timeout) if timeout is not None else default_timeout(asyncio.run(stockdag_health(args.url)))
    try:
        if symbols:
            mix = RequestMix(args.symbols or symbols, str(cfg("start", args.start)), str(cfg("end", args.end)),
                             distribution=cfg("distribution", args.mix), s=float(cfg("zipf_s", args.zipf_s)), seed=seed)
        bc = BenchConfig(args.url, rate=args.rate, users=args.users, arrivals=cfg("arrivals", args.arrivals),
                         duration=float(cfg("duration", args.duration)), requests=args.requests,
                         warmup=float(cfg("warmup", args.warmup)), timeout=timeout,
                         connections=int(cfg("connections", args.connections)), mix=mix, seed=seed,
                         progress=not args.json and sys.stderr.isatty(),
                         extra={"mix": None if mix is None else {"distribution": mix.distribution, "symbols": list(mix.symbols),
                                                                 "start": mix.start, "end": mix.end, "seed": seed}})
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    result = run(bc)
    if args.out:
        write_records(result.records, args.out)
    if args.json:
        print(json.dumps(result.summary.to_dict(), indent=2))
    else:
        print(result.summary.table())
        if args.out:
            print(f"  {len(result.records)} request records (warm-up included, flagged) in {args.out}")
    if result.summary.ok == 0:
        errors = ", ".join(f"{k} {v}" for k, v in sorted(result.summary.errors.items()))
        print(f"stockdag: error: none of the {result.summary.requests} measured requests succeeded"
              + (f" ({errors})" if errors else ""), file=sys.stderr)
        return 1
    return 0


async def _reach_url(url: str, timeout: float) -> None:
    """Open (and close) one TCP connection to the URL's host before the run, sending no request, so that a
    server that is not there is one line instead of a run of failures."""
    import asyncio
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, port), timeout)
    except OSError as exc:
        raise InvalidRequest(f"cannot connect to {parts.hostname}:{port} ({url}): {exc.strerror or _one_line(exc)}") from None
    except asyncio.TimeoutError:
        raise InvalidRequest(f"cannot connect to {parts.hostname}:{port} ({url}) within {timeout:g} s") from None
    writer.close()


def _add_webapp_parser(sub) -> None:
    p = sub.add_parser("webapp", help="a web page that load-tests a server URL and shows latency and throughput live",
                       description="Serve a Bokeh app (default http://127.0.0.1:5006) that sends requests to a server URL, open loop "
                                   "(rate) or closed loop (users), and shows each request's latency, a histogram, percentiles, offered vs "
                                   "achieved throughput and errors live; for a stockdag server also the mean time per stage and which "
                                   "worker ran each stage. Finished runs are kept (raw CSV + summary) and can be overlaid for comparison.")
    p.add_argument("--port", type=port(0), default=None, help="TCP port of the web app, 0-65535 (default: stockdag.webapp.port, 5006; 0 picks a free one)")
    p.add_argument("--host", type=host_name, default=None, help="address to bind (default: stockdag.webapp.host, 127.0.0.1)")
    p.add_argument("--url", type=http_url, default=None, help="server URL the form is prefilled with (default: stockdag.webapp.url, a local `stockdag serve`)")
    p.add_argument("--store", default=None, help="folder where finished runs are kept (default: stockdag.webapp.store or ~/.cache/stockdag/webapp)")


def _cmd_webapp(args) -> int:
    from .webapp import make_server

    try:
        server = make_server(host=args.host, port=args.port, store=args.store, url=args.url)
    except OSError as exc:  # the port is taken or the address is not this machine's
        raise InvalidRequest(f"cannot listen on {args.host or '127.0.0.1'}:{args.port}: {exc.strerror or exc}") from None
    server.start()
    print(f"stockdag webapp: http://{server.address or '127.0.0.1'}:{server.port}/ (runs kept in {server.store.folder}); "
          "Ctrl-C stops", file=sys.stderr)
    server.io_loop.start()
    return 0


def _add_experiment_parsers(sub) -> None:
    p = sub.add_parser("sweep", help="run (or resume) a sweep from a parameter file, without the notebook",
                       description="Run the sweep of experiments/sweep.ipynb directly: every configuration x load x repeat, "
                                   "written to OUT/RUN_ID/ (resumable), then its charts and REPORT.md.")
    p.add_argument("params", help="a parameter file, e.g. experiments/params/default.yaml")
    p.add_argument("--run-id", type=run_id, default=None, help="run folder name (default: a timestamp); an existing one is resumed")
    p.add_argument("--out", default=None, help="folder that holds run folders (default: the file's out, or results)")
    p = sub.add_parser("report", help="charts and REPORT.md of a run folder, or results/REPORT.md of a results folder",
                       description="Rebuild everything from the folder alone: for a run folder (it has config.json) its charts "
                                   "and REPORT.md; for a folder of runs, each run's report where missing and the index REPORT.md.")
    p.add_argument("path", help="results/<run-id> or results")


def _cmd_sweep(args) -> int:
    from .experiments import SweepParams, build, run_sweep

    import yaml

    try:
        params = SweepParams.from_yaml(args.params, run_id=args.run_id, out=args.out)
    except yaml.YAMLError as exc:
        raise InvalidRequest(yaml_error(args.params, exc)) from None
    except (OSError, ValueError, TypeError) as exc:
        raise InvalidRequest(_one_line(exc)) from None
    folder = run_sweep(params)
    build(folder)
    print(f"{folder}/REPORT.md")
    return 0


def _cmd_report(args) -> int:
    import os

    from .experiments import build, build_index

    if os.path.exists(os.path.join(args.path, "config.json")):
        build(args.path)
        print(os.path.join(args.path, "REPORT.md"))
    elif os.path.isdir(args.path):
        print(build_index(args.path))
    else:
        raise InvalidRequest(f"{args.path} is neither a run folder (with config.json) nor a folder of runs")
    return 0


COMMANDS = {"predict": _cmd_predict, "symbols": _cmd_symbols, "train": _cmd_train, "evaluate": _cmd_evaluate, "demo": _cmd_demo,
            "cluster": _cmd_cluster,
            "serve": _cmd_serve, "bench": _cmd_bench,
            "webapp": _cmd_webapp, "sweep": _cmd_sweep, "report": _cmd_report}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:  # usage errors, --help and --version end here with their exit status (2, 0, 0)
        args = parser.parse_args(argv)
        if args.command in CHECKS:
            sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
            CHECKS[args.command](sub.choices[args.command], args)
    except SystemExit as exc:
        return exc.code
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:  # distributed sets its own loggers to INFO when first imported, from this key
        import dask

        dask.config.set({"logging.distributed": "warning"})
        logging.getLogger("distributed").setLevel(logging.WARNING)
    try:
        with _pipeline_config(args):
            return COMMANDS[args.command](args)
    except StockdagError as exc:
        print(f"stockdag: error: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stockdag: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
