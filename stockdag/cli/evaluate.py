"""``stockdag evaluate``: walk-forward accuracy of each model, the selector and a naive baseline."""
from __future__ import annotations

import json

from .common import DATA_OPTIONS, PIPELINE_OPTION, Command, arg, check_data, use_pipeline
from .options import iso_date, positive_int, symbol

COMMAND = Command(
    "evaluate", help="walk-forward accuracy of each model, the selector and a naive baseline",
    description="Walk forward from --start to --end: refit every --step days on the --window days before, "
                "predict each next day, and report direction accuracy and MAE per model, for the selector and "
                "for a naive 'always up' baseline (no look-ahead).",
    arguments=(
        arg("--symbols", type=symbol, nargs="+", default=None,
            help="symbols to evaluate (default: every symbol of the data source with --window days of prices before --start)"),
        arg("--start", type=iso_date, default="2011-01-01", help="first test day (default 2011-01-01)"),
        arg("--end", type=iso_date, default="2012-12-31", help="last test day (default 2012-12-31)"),
        arg("--step", type=positive_int, default=20, help="days predicted per refit (default 20)"),
        arg("--window", type=positive_int, default=None, help="training rows per fit (default: stockdag.models.window)"),
        DATA_OPTIONS, PIPELINE_OPTION,
    ), json="print the metric table as JSON (a list of records; with a spec's interval step, {metrics, interval})")
add_parser = COMMAND.add


def check(parser, args) -> None:
    check_data(parser, args)
    if args.start > args.end:
        parser.error(f"--start {args.start} is after --end {args.end}")


def run(args) -> int:
    from .. import config
    from ..lab.evaluate import evaluate

    spec = use_pipeline(args)
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
