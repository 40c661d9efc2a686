"""``stockdag predict SYMBOL``: one prediction, centralized or distributed, printed or as JSON."""
from __future__ import annotations

import json

from ..pipeline.modes import PREDICT_MODES
from ..pipeline.request import PROFILES
from .common import (
    DATA_OPTIONS,
    PIPELINE_OPTION,
    Command,
    arg,
    check_cluster,
    check_data,
    cluster_options,
    reach_scheduler,
    use_pipeline,
)
from .options import iso_date, symbol

COMMAND = Command(
    "predict", help="predict the next-day close of a symbol",
    description="Predict the next-day close of SYMBOL through the pipeline (C1-C12 and five models, or the --pipeline spec).",
    arguments=(
        arg("symbol", type=symbol, help="ticker symbol, e.g. AAPL (see `stockdag symbols`)"),
        arg("--as-of", type=iso_date, default=None, help="YYYY-MM-DD: predict the day after this date (default: the last day of data)"),
        arg("--mode", choices=PREDICT_MODES, default=None,
            help="centralized: stages one after another in this process; distributed: the Dask graph on a cluster "
                 "(default: distributed when --workers, --scheduler or --strategy is given, else centralized)"),
        arg("--profile", choices=PROFILES, default=None, help="refit: fit models at request time (heavy); pretrained: load models from `stockdag train`"),
        DATA_OPTIONS, cluster_options(), PIPELINE_OPTION,
    ), json="print the whole response (with the stage trace) as JSON")
add_parser = COMMAND.add


def check(parser, args) -> None:
    check_data(parser, args)
    check_cluster(parser, args, {"distributed": ("workers", "scheduler", "strategy")})
    args.mode = args.mode or "centralized"
    if args.mode == "distributed" and args.scheduler is None and args.workers is None:
        args.workers = 2  # the LocalCluster's size when none is given


def _cache_text(cache) -> str:
    """``{"prices": "hit", "news": "miss"}`` as ``prices hit, news miss``."""
    if isinstance(cache, dict):
        return ", ".join(f"{k} {v}" for k, v in cache.items()) or "none"
    return str(cache)


def run(args) -> int:
    from ..pipeline.request import parse_request
    from ..pipeline.result import finite
    from ..run import CentralizedExecutor, DistributedExecutor

    request = parse_request(args.symbol, args.as_of, profile=args.profile, source=args.source, data_dir=args.data_dir,
                            pipeline=use_pipeline(args))
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
        print(json.dumps(finite(d), indent=2, allow_nan=False))  # strict JSON, as the server sends
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
