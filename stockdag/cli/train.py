"""``stockdag train``: fit the pretrained profile's models into the model store."""
from __future__ import annotations

from .common import DATA_OPTIONS, PIPELINE_OPTION, Command, arg, check_data, use_pipeline
from .options import iso_date, positive_int, symbol

COMMAND = Command(
    "train", help="fit the pretrained profile's models into the model store",
    description="Fit the five models of the pretrained profile for each symbol on data up to --train-end, "
                "and save them in the model store that `--profile pretrained` loads.",
    arguments=(
        arg("--symbols", type=symbol, nargs="+", default=None, help="symbols to train (default: every symbol of the data source with window/2 days of prices up to --train-end)"),
        arg("--train-end", type=iso_date, default=None, help="last date the models may see, YYYY-MM-DD (default: stockdag.models.train_end)"),
        arg("--store", default=None, help="model store folder (default: stockdag.models.store or ~/.cache/stockdag/models)"),
        arg("--window", type=positive_int, default=None, help="training rows per model (default: stockdag.models.window)"),
        DATA_OPTIONS, PIPELINE_OPTION,
    ))
add_parser = COMMAND.add


def check(parser, args) -> None:
    check_data(parser, args)


def run(args) -> int:
    from .. import config
    from ..lab.train import default_symbols, train

    spec = use_pipeline(args)
    window = config.get("models.window", args.window)
    source, data_dir = config.get("data.source", args.source), config.get("data.data_dir", args.data_dir)
    symbols = args.symbols or default_symbols(config.get("models.train_end", args.train_end), int(window), source, data_dir)
    store = train(symbols, config.get("models.train_end", args.train_end), config.get("models.store", args.store),
                  window=window, source=source, data_dir=data_dir, show_progress=True, pipeline=spec)
    print(f"trained {len(symbols)} symbols x {len(spec.models)} models (pipeline {spec.name}) into {store}")
    return 0
