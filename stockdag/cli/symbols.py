"""``stockdag symbols``: each symbol of a data source, its prices and the as-of dates it can be predicted for."""
from __future__ import annotations

from ..errors import InvalidRequest, StockdagError
from ..pipeline.request import PROFILES
from .common import add_data_options, check_data


def add_parser(sub) -> None:
    p = sub.add_parser("symbols", help="list the symbols a data source has, with the dates each can be predicted for",
                       description="List the symbols of a data source: for each, its first and last day of prices, and the first as-of "
                                   "date a prediction of the profile can answer: enough history (stockdag.data.min_history trading days) and "
                                   "feature rows, and with --profile pretrained a recent-error window after the stored models' training end.")
    p.add_argument("--profile", choices=PROFILES, default=None, help="workload profile whose as-of range is shown (default: stockdag.profile)")
    add_data_options(p)


def check(parser, args) -> None:
    check_data(parser, args)


def run(args) -> int:
    from .. import config
    from ..domain.data.prices import get_price_source

    source_name = config.get("data.source", args.source)
    data_dir = config.get("data.data_dir", args.data_dir)
    source = get_price_source(source_name, data_dir, float(config.get("data.timeout")))
    names = source.symbols()
    if not names:
        if source_name == "csv":
            raise InvalidRequest(f"no price files (<SYMBOL>.csv) in {data_dir}")
        raise InvalidRequest(f"the {source_name} source cannot list its symbols (it answers for one symbol at a time: "
                             f"stockdag predict SYMBOL --source {source_name})")
    from ..run.ranges import symbol_ranges

    # the range a server of this profile answers (the same code as its /symbols), so the two cannot disagree
    settings = {**config.snapshot(), "profile": config.get("profile", args.profile)}
    reasons: dict[str, StockdagError] = {}
    ranges = symbol_ranges(source, names, settings, reasons)
    for name in names:
        try:
            frame = source.fetch(name, None, history_days=10**9, min_history=1).frame
        except StockdagError as exc:
            print(f"{name:<8} unreadable: {exc.message}")
            continue
        first, last = frame.index[0].date(), frame.index[-1].date()
        r = ranges.get(name)
        usable = f"{settings['profile']} as-of {r['first']} .. {r['last']}" if r else \
            f"{settings['profile']}: none ({reasons[name].message if name in reasons else 'too little history'})"
        print(f"{name:<8} prices {first} .. {last} ({len(frame)} days); {usable}")
    return 0
