"""``stockdag symbols``: each symbol of a data source, its prices and the as-of dates it can be predicted for."""
from __future__ import annotations

from ..errors import InvalidRequest, StockdagError
from .common import add_data_options, check_data


def add_parser(sub) -> None:
    p = sub.add_parser("symbols", help="list the symbols a data source has, with the dates each can be predicted for",
                       description="List the symbols of a data source: for each, its first and last day of prices, and the first as-of "
                                   "date with enough history (stockdag.data.min_history trading days) for a prediction.")
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
