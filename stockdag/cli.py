"""``stockdag`` command line: predict, symbols, train, evaluate, demo.

Errors in the user's input or data print one line (``stockdag: error: ...``)
and exit with status 2; no traceback.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys

from .errors import StockdagError
from .request import PROFILES, SOURCES


def _add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", choices=SOURCES, default=None,
                   help="where prices and news come from (default: stockdag.data.source, 'bundled': offline real prices + synthetic headlines)")
    p.add_argument("--data-dir", default=None, help="folder of <SYMBOL>.csv price files (with --source csv)")


def _add_cluster_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, default=2, help="worker processes of the LocalCluster started for distributed mode (default 2, one thread each)")
    p.add_argument("--scheduler", default=None, help="address of a running Dask scheduler to use instead of a LocalCluster, e.g. tcp://10.0.0.5:8786")
    p.add_argument("--strategy", default=None, help="job-placement strategy (see stockdag.placement.STRATEGIES; default: stockdag.placement.strategy)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stockdag", description="Stock-prediction inference pipeline as a Dask graph: run, serve and measure it.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("predict", help="predict the next-day close of a symbol", description="Predict the next-day close of SYMBOL through the C1-C12 pipeline.")
    p.add_argument("symbol", help="ticker symbol, e.g. AAPL (see `stockdag symbols`)")
    p.add_argument("--as-of", default=None, help="YYYY-MM-DD: predict the day after this date (default: the last day of data)")
    p.add_argument("--mode", choices=("centralized", "distributed"), default="centralized",
                   help="centralized: stages one after another in this process; distributed: the Dask graph on a cluster")
    p.add_argument("--profile", choices=PROFILES, default=None, help="refit: fit models at request time (heavy); pretrained: load models from `stockdag train`")
    _add_data_options(p)
    _add_cluster_options(p)
    p.add_argument("--json", action="store_true", help="print the whole response (with the stage trace) as JSON")

    p = sub.add_parser("symbols", help="list the symbols a data source has")
    _add_data_options(p)

    p = sub.add_parser("train", help="fit the pretrained profile's models into the model store")
    p.add_argument("--symbols", nargs="*", default=None, help="symbols to train (default: every bundled symbol with enough history)")
    p.add_argument("--train-end", default=None, help="last date the models may see (default: stockdag.models.train_end)")
    p.add_argument("--store", default=None, help="model store folder (default: stockdag.models.store or ~/.cache/stockdag/models)")
    p.add_argument("--window", type=int, default=None, help="training rows per model (default: stockdag.models.window)")
    _add_data_options(p)

    p = sub.add_parser("evaluate", help="walk-forward accuracy of each model, the selector and a naive baseline")
    p.add_argument("--symbols", nargs="*", default=["AAPL", "GOOG", "IBM", "MSFT"], help="symbols to evaluate")
    p.add_argument("--start", default="2011-01-01", help="first test day (default 2011-01-01)")
    p.add_argument("--end", default="2012-12-31", help="last test day (default 2012-12-31)")
    p.add_argument("--step", type=int, default=20, help="days predicted per refit (default 20)")
    p.add_argument("--window", type=int, default=None, help="training rows per fit (default: stockdag.models.window)")
    _add_data_options(p)
    p.add_argument("--json", action="store_true", help="print the metric table as JSON")

    p = sub.add_parser("demo", help="run the same requests centralized and distributed and compare latency/throughput",
                       description="Start a LocalCluster, run N distinct requests both ways (warm-up excluded), print latency and throughput with their ratio, and the stage trace of one request.")
    p.add_argument("--requests", type=int, default=16, help="measured requests per phase (default 16)")
    p.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes, one thread each (default 2)")
    p.add_argument("--in-flight", type=int, default=16, help="concurrent requests in the throughput phase (default 16)")
    p.add_argument("--profile", choices=PROFILES, default=None, help="workload profile (default: stockdag.profile, i.e. refit)")
    p.add_argument("--seed", type=int, default=0, help="seed of the request mix")
    p.add_argument("--scheduler", default=None, help="use a running Dask scheduler instead of a LocalCluster")
    p.add_argument("--json", action="store_true", help="print the measurements as JSON")
    return parser


def _cmd_predict(args) -> int:
    from . import config
    from .request import parse_request
    from .run import CentralizedExecutor, DistributedExecutor

    request = parse_request(args.symbol, args.as_of, profile=args.profile, source=args.source, data_dir=args.data_dir)
    if args.mode == "centralized":
        result = CentralizedExecutor().run(request)
    else:
        with DistributedExecutor(address=args.scheduler, n_workers=args.workers,
                                 strategy=config.get("placement.strategy", args.strategy), dashboard_address=":0") as ex:
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
        print(f"  {mark} {c['model']:<14} return {100 * c['prediction']:+.3f}%   recent MAE {100 * c['recent_error']:.3f}%")
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

    symbols = args.symbols or ["AAPL", "GOOG", "IBM", "MSFT"]
    store = train(symbols, config.get("models.train_end", args.train_end), config.get("models.store", args.store),
                  window=config.get("models.window", args.window), source=args.source or "bundled",
                  data_dir=args.data_dir, show_progress=True)
    print(f"trained {len(symbols)} symbols x 5 models into {store}")
    return 0


def _cmd_evaluate(args) -> int:
    from . import config
    from .evaluate import evaluate

    ev = evaluate(args.symbols, args.start, args.end, window=config.get("models.window", args.window), step=args.step,
                  source=args.source or "bundled", data_dir=args.data_dir, show_progress=not args.json)
    if args.json:
        print(ev.table.reset_index().to_json(orient="records", indent=2))
    else:
        print(f"walk-forward {args.start}..{args.end}, {', '.join(args.symbols)} ({len(ev.daily)} predictions)")
        print(ev.table.to_string(float_format=lambda v: f"{v:.4f}"))
    return 0


def _cmd_demo(args) -> int:
    from .demo import compare

    client = None
    if args.scheduler:
        from distributed import Client

        client = Client(args.scheduler)
    try:
        cmp = compare(args.requests, args.workers, args.in_flight, args.profile, seed=args.seed,
                      client=client, show_progress=not args.json)
    finally:
        if client is not None:
            client.close()
    if args.json:
        print(json.dumps({
            "requests": cmp.requests, "workers": cmp.workers, "in_flight": cmp.in_flight, "profile": cmp.profile,
            "centralized_latency": cmp.centralized_latency, "distributed_latency": cmp.distributed_latency,
            "centralized_throughput": cmp.centralized_throughput, "distributed_throughput": cmp.distributed_throughput,
            "latency_ratio": cmp.latency_ratio, "throughput_ratio": cmp.throughput_ratio, "machine": cmp.machine,
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


COMMANDS = {"predict": _cmd_predict, "symbols": _cmd_symbols, "train": _cmd_train, "evaluate": _cmd_evaluate, "demo": _cmd_demo}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:  # distributed sets its own loggers to INFO
        logging.getLogger("distributed").setLevel(logging.WARNING)
    try:
        return COMMANDS[args.command](args)
    except StockdagError as exc:
        print(f"stockdag: error: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stockdag: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
