"""``stockdag`` command line: predict, symbols, train, evaluate, demo, cluster.

Errors in the user's input or data print one line (``stockdag: error: ...``)
and exit with status 2; no traceback.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys

from .errors import InvalidRequest, StockdagError
from .granularity import GRANULARITY_CHOICES
from .request import PROFILES, SOURCES


def _add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", choices=SOURCES, default=None,
                   help="where prices and news come from (default: stockdag.data.source, 'bundled': offline real prices + synthetic headlines)")
    p.add_argument("--data-dir", default=None, help="folder of <SYMBOL>.csv price files (with --source csv)")


def _add_pipeline_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pipeline", default=None, metavar="FILE",
                   help="pipeline spec YAML: competing models and extra steps (see experiments/pipelines/; default: stockdag.pipeline.spec, else C1-C12 with five models)")


def _pipeline_config(args):
    """Validate --pipeline (one line, exit 2, on a bad spec); a context that makes it stockdag.pipeline.spec."""
    import contextlib

    import dask

    from .pipeline_spec import load_pipeline

    if not getattr(args, "pipeline", None):
        return contextlib.nullcontext()
    # the validated spec itself, not the path: requests parsed from a configuration snapshot carry it as is
    return dask.config.set({"stockdag.pipeline.spec": load_pipeline(args.pipeline).to_dict()})


def _use_pipeline(args):
    """The pipeline spec of this command (--pipeline, set by main, else stockdag.pipeline.spec)."""
    from . import config
    from .pipeline_spec import load_pipeline

    return load_pipeline(config.get("pipeline.spec"))


def _add_cluster_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, default=2, help="worker processes of the LocalCluster started for distributed mode (default 2, one thread each)")
    p.add_argument("--scheduler", default=None, help="address of a running Dask scheduler to use instead of a LocalCluster, e.g. tcp://10.0.0.5:8786")
    p.add_argument("--strategy", default=None, help="job-placement strategy (see stockdag.placement.STRATEGIES; default: stockdag.placement.strategy)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stockdag", description="Stock-prediction inference pipeline as a Dask graph: run, serve and measure it.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("predict", help="predict the next-day close of a symbol", description="Predict the next-day close of SYMBOL through the pipeline (C1-C12 and five models, or the --pipeline spec).")
    p.add_argument("symbol", help="ticker symbol, e.g. AAPL (see `stockdag symbols`)")
    p.add_argument("--as-of", default=None, help="YYYY-MM-DD: predict the day after this date (default: the last day of data)")
    p.add_argument("--mode", choices=("centralized", "distributed"), default="centralized",
                   help="centralized: stages one after another in this process; distributed: the Dask graph on a cluster")
    p.add_argument("--profile", choices=PROFILES, default=None, help="refit: fit models at request time (heavy); pretrained: load models from `stockdag train`")
    _add_data_options(p)
    _add_cluster_options(p)
    _add_pipeline_option(p)
    p.add_argument("--json", action="store_true", help="print the whole response (with the stage trace) as JSON")

    p = sub.add_parser("symbols", help="list the symbols a data source has")
    _add_data_options(p)

    p = sub.add_parser("train", help="fit the pretrained profile's models into the model store")
    p.add_argument("--symbols", nargs="*", default=None, help="symbols to train (default: every bundled symbol with enough history)")
    p.add_argument("--train-end", default=None, help="last date the models may see (default: stockdag.models.train_end)")
    p.add_argument("--store", default=None, help="model store folder (default: stockdag.models.store or ~/.cache/stockdag/models)")
    p.add_argument("--window", type=int, default=None, help="training rows per model (default: stockdag.models.window)")
    _add_data_options(p)
    _add_pipeline_option(p)

    p = sub.add_parser("evaluate", help="walk-forward accuracy of each model, the selector and a naive baseline")
    p.add_argument("--symbols", nargs="*", default=["AAPL", "GOOG", "IBM", "MSFT"], help="symbols to evaluate")
    p.add_argument("--start", default="2011-01-01", help="first test day (default 2011-01-01)")
    p.add_argument("--end", default="2012-12-31", help="last test day (default 2012-12-31)")
    p.add_argument("--step", type=int, default=20, help="days predicted per refit (default 20)")
    p.add_argument("--window", type=int, default=None, help="training rows per fit (default: stockdag.models.window)")
    _add_data_options(p)
    _add_pipeline_option(p)
    p.add_argument("--json", action="store_true", help="print the metric table as JSON (a list of records; with a spec's interval step, {metrics, interval})")

    p = sub.add_parser("demo", help="run the same requests centralized and distributed and compare latency/throughput",
                       description="Start a LocalCluster, run N distinct requests both ways (warm-up excluded), print latency and throughput with their ratio, and the stage trace of one request.")
    p.add_argument("--requests", type=int, default=16, help="measured requests per phase (default 16)")
    p.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes, one thread each (default 2)")
    p.add_argument("--in-flight", type=int, default=16, help="concurrent requests in the throughput phase (default 16)")
    p.add_argument("--profile", choices=PROFILES, default=None, help="workload profile (default: stockdag.profile, i.e. refit)")
    p.add_argument("--seed", type=int, default=0, help="seed of the request mix")
    p.add_argument("--scheduler", default=None, help="use a running Dask scheduler instead of a LocalCluster")
    p.add_argument("--strategies", default="dask",
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
    return parser


def _cmd_predict(args) -> int:
    from .request import parse_request
    from .run import CentralizedExecutor, DistributedExecutor

    request = parse_request(args.symbol, args.as_of, profile=args.profile, source=args.source, data_dir=args.data_dir,
                            pipeline=_use_pipeline(args))
    if args.mode == "centralized":
        result = CentralizedExecutor().run(request)
    else:
        with DistributedExecutor(address=args.scheduler, n_workers=args.workers,
                                 strategy=args.strategy, dashboard_address=":0") as ex:
            result = ex.run(request)
    d = result.to_dict()
    if args.json:
        print(json.dumps(d, indent=2))
        return 0
    p = d["prediction"]
    print(f"{d['symbol']} as of {d['as_of']}: close {p['last_close']:.2f} -> predicted next close "
          f"{p['next_close']:.2f} ({100 * p['next_return']:+.2f}%), winner {d['winner']} [{d['mode']}, {d['profile']}]")
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
    print(f"  sentiment: {s['headlines']} headlines, latest day {s['latest_day']} = {s['latest']:+.3f}; cache: {d['cache']}")
    return 0


def _cmd_symbols(args) -> int:
    from .data.prices import get_price_source

    print("\n".join(get_price_source(args.source or "bundled", args.data_dir).symbols()))
    return 0


def _cmd_train(args) -> int:
    from . import config
    from .models.train import train

    spec = _use_pipeline(args)
    symbols = args.symbols or ["AAPL", "GOOG", "IBM", "MSFT"]
    store = train(symbols, config.get("models.train_end", args.train_end), config.get("models.store", args.store),
                  window=config.get("models.window", args.window), source=args.source or "bundled",
                  data_dir=args.data_dir, show_progress=True, pipeline=spec)
    print(f"trained {len(symbols)} symbols x {len(spec.models)} models (pipeline {spec.name}) into {store}")
    return 0


def _cmd_evaluate(args) -> int:
    from . import config
    from .evaluate import evaluate

    spec = _use_pipeline(args)
    ev = evaluate(args.symbols, args.start, args.end, window=config.get("models.window", args.window), step=args.step,
                  source=args.source or "bundled", data_dir=args.data_dir, show_progress=not args.json, pipeline=spec)
    if args.json:
        records = json.loads(ev.table.reset_index().to_json(orient="records"))
        # with the interval step: an object with the metric records and the interval's coverage
        print(json.dumps(records if ev.coverage is None else {"metrics": records, "interval": ev.coverage}, indent=2))
    else:
        print(f"walk-forward {args.start}..{args.end}, {', '.join(args.symbols)} ({len(ev.daily)} predictions); "
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

        client = Client(args.scheduler, security=security_for(args.scheduler))
    from .placement import STRATEGIES

    strategies = ["dask", *STRATEGIES] if args.strategies == "all" else [x.strip() for x in args.strategies.split(",") if x.strip()]
    unknown = [x for x in strategies if x != "dask" and x not in STRATEGIES]
    if unknown:
        raise InvalidRequest(f"unknown strategy {unknown[0]!r}; choose from dask, {', '.join(STRATEGIES)}")
    try:
        cmp = compare(args.requests, args.workers, args.in_flight, args.profile, seed=args.seed,
                      client=client, show_progress=not args.json, strategies=tuple(dict.fromkeys(strategies)),
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
          f"machine: {cmp.machine['cores']} cores, {cmp.machine['memory_gb']} GiB")
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
        for r in rows if not args.json else ():
            print(f"{r['cluster_id']:<28} {r['kind']:<9} {'up' if r['alive'] else 'DEAD':<5} {r['scheduler']}  {r['dashboard']}  "
                  f"{len(r['workers'])} workers")
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
    p.add_argument("--mode", choices=("centralized", "replicated", "distributed"), default=None,
                   help="centralized: one request's pipeline at a time in the server process (the baseline); replicated: --replicas "
                        "processes each running whole requests; distributed: many requests in flight on one Dask client (default: stockdag.serve.mode)")
    p.add_argument("--replicas", type=int, default=None, help="processes of replicated mode (default: stockdag.serve.replicas)")
    p.add_argument("--workers", type=int, default=None, help="LocalCluster worker processes of distributed mode, one thread each (default: stockdag.serve.workers)")
    p.add_argument("--scheduler", default=None, help="address of a running Dask scheduler for distributed mode instead of a LocalCluster")
    p.add_argument("--strategy", default=None, help="job-placement strategy of distributed mode (see stockdag.placement.STRATEGIES; default: stockdag.placement.strategy)")
    p.add_argument("--profile", choices=PROFILES, default=None, help="workload profile (default: stockdag.profile)")
    p.add_argument("--host", default=None, help="address to bind (default: stockdag.serve.host, 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="TCP port (default: stockdag.serve.port, 8000)")
    p.add_argument("--max-in-flight", type=int, default=None, help="prediction requests admitted at once (default: stockdag.serve.max_in_flight)")
    p.add_argument("--deadline", type=float, default=None, help="seconds before a prediction answers 504 (default: stockdag.serve.deadline)")
    _add_data_options(p)
    _add_pipeline_option(p)

    p = sub.add_parser("bench", help="measure a server from the client side: open or closed loop load, latency percentiles",
                       description="Send requests to URL and report offered rate, achieved throughput, latency percentiles (HDR histogram) and "
                                   "errors by kind. A stockdag server's base URL gets a seeded mix of /predict/{symbol}?as_of= requests; any "
                                   "other URL is requested as given. Open loop (--rate) counts latency from each request's intended send time, "
                                   "so a stalled server cannot hide its stall; closed loop (--users) waits for each answer before the next "
                                   "request, and so hides stalls.")
    p.add_argument("url", help="server base URL (e.g. http://127.0.0.1:8000) or any URL to request as given")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--rate", type=float, default=None, help="open loop: requests per second")
    g.add_argument("--users", type=int, default=None, help="closed loop: concurrent users, each sending the next request when the last returns")
    p.add_argument("--arrivals", choices=("constant", "poisson"), default=None, help="open-loop arrivals (default: stockdag.bench.arrivals)")
    p.add_argument("--duration", type=float, default=None, help="measured seconds after the warm-up (default: stockdag.bench.duration)")
    p.add_argument("--requests", type=int, default=None, help="send this many measured requests instead of running for --duration")
    p.add_argument("--warmup", type=float, default=None, help="seconds of requests excluded from the results (default: stockdag.bench.warmup)")
    p.add_argument("--timeout", type=float, default=None, help="per-request timeout in seconds, counted as error 'timeout' (default: stockdag.bench.timeout)")
    p.add_argument("--connections", type=int, default=None, help="most open connections in open loop (default: stockdag.bench.connections)")
    p.add_argument("--mix", choices=("uniform", "zipf"), default=None, help="how symbols and dates are drawn (default: stockdag.bench.distribution)")
    p.add_argument("--zipf-s", type=float, default=None, help="Zipf exponent of --mix zipf (default: stockdag.bench.zipf_s)")
    p.add_argument("--symbols", nargs="*", default=None, help="symbols of the mix (default: all the server lists)")
    p.add_argument("--start", default=None, help="first as-of date of the mix (default: stockdag.bench.start)")
    p.add_argument("--end", default=None, help="last as-of date of the mix (default: stockdag.bench.end)")
    p.add_argument("--seed", type=int, default=None, help="seed of the mix and of Poisson arrivals (default: stockdag.bench.seed)")
    p.add_argument("--raw", action="store_true", help="request URL as given even if it is a stockdag server")
    p.add_argument("--out", default=None, help="write every request's record to this .parquet or .csv file")
    p.add_argument("--json", action="store_true", help="print the summary as JSON (no progress bar)")


def _cmd_serve(args) -> int:
    import dask

    from . import config
    from .serve import create_app, serve

    _use_pipeline(args)  # create_app's configuration snapshot carries the spec into every request
    data = {k: v for k, v in {"stockdag.data.source": args.source, "stockdag.data.data_dir": args.data_dir}.items() if v is not None}
    with dask.config.set(data):  # create_app snapshots the configuration, so the override outlives this block
        app = create_app(args.mode, replicas=args.replicas, workers=args.workers, scheduler=args.scheduler,
                         strategy=args.strategy, profile=args.profile, max_in_flight=args.max_in_flight, deadline=args.deadline)
    host, port = config.get("serve.host", args.host), config.get("serve.port", args.port)
    print(f"stockdag serve: {app.state.backend.mode} on http://{host}:{port} (docs at /docs); Ctrl-C stops", file=sys.stderr)
    serve(app, host=host, port=port)
    return 0


def _cmd_bench(args) -> int:
    import asyncio

    from . import config
    from .bench import BenchConfig, RequestMix, probe_stockdag, run, write_records

    def cfg(key, value):
        return config.get(f"bench.{key}", value)

    if args.out and not str(args.out).lower().endswith((".parquet", ".pq", ".csv")):
        raise InvalidRequest(f"cannot tell the format of {args.out!r}: use a .parquet or .csv file name")
    seed = int(cfg("seed", args.seed))
    mix = None
    symbols = None if args.raw else asyncio.run(probe_stockdag(args.url))
    try:
        if symbols:
            mix = RequestMix(args.symbols or symbols, str(cfg("start", args.start)), str(cfg("end", args.end)),
                             distribution=cfg("distribution", args.mix), s=float(cfg("zipf_s", args.zipf_s)), seed=seed)
        bc = BenchConfig(args.url, rate=args.rate, users=args.users, arrivals=cfg("arrivals", args.arrivals),
                         duration=float(cfg("duration", args.duration)), requests=args.requests,
                         warmup=float(cfg("warmup", args.warmup)), timeout=float(cfg("timeout", args.timeout)),
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
    return 0


def _add_webapp_parser(sub) -> None:
    p = sub.add_parser("webapp", help="a web page that load-tests a server URL and shows latency and throughput live",
                       description="Serve a Bokeh app (default http://127.0.0.1:5006) that sends requests to a server URL, open loop "
                                   "(rate) or closed loop (users), and shows each request's latency, a histogram, percentiles, offered vs "
                                   "achieved throughput and errors live; for a stockdag server also the mean time per stage and which "
                                   "worker ran each stage. Finished runs are kept (raw CSV + summary) and can be overlaid for comparison.")
    p.add_argument("--port", type=int, default=None, help="TCP port of the web app (default: stockdag.webapp.port, 5006; 0 picks a free one)")
    p.add_argument("--host", default=None, help="address to bind (default: stockdag.webapp.host, 127.0.0.1)")
    p.add_argument("--url", default=None, help="server URL the form is prefilled with (default: stockdag.webapp.url, a local `stockdag serve`)")
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
    p.add_argument("--run-id", default=None, help="run folder name (default: a timestamp); an existing one is resumed")
    p.add_argument("--out", default=None, help="folder that holds run folders (default: the file's out, or results)")
    p = sub.add_parser("report", help="charts and REPORT.md of a run folder, or results/REPORT.md of a results folder",
                       description="Rebuild everything from the folder alone: for a run folder (it has config.json) its charts "
                                   "and REPORT.md; for a folder of runs, each run's report where missing and the index REPORT.md.")
    p.add_argument("path", help="results/<run-id> or results")


def _cmd_sweep(args) -> int:
    from .experiments import SweepParams, build, run_sweep

    try:
        params = SweepParams.from_yaml(args.params, run_id=args.run_id, out=args.out)
    except (OSError, ValueError) as exc:
        raise InvalidRequest(str(exc)) from None
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
    args = build_parser().parse_args(argv)
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
