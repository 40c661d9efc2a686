"""``stockdag`` command line: predict, symbols, train, evaluate, demo, overhead, fairness, cluster, serve, bench, webapp, sweep, report.

One module per command (as dask's own CLI has one per command): each declares
its arguments as data, a ``COMMAND`` (:class:`~stockdag.cli.common.Command`, whose
``add`` is the module's ``add_parser(sub)``), optionally ``check(parser, args)``
(checks across options, run after parsing) and ``run(args) -> int``; the work
itself lives in the package (:mod:`stockdag.lab.bench`, :mod:`stockdag.deploy`, ...).
Options shared by several commands are in :mod:`stockdag.cli.common`, each option's
value type in :mod:`stockdag.cli.options`.

Errors in the user's input or data print one line (``stockdag: error: ...``)
and exit with status 2; no traceback. Options are checked when the command
line is parsed (types, ranges, dates, options that need another option or
mode), before anything starts. A command imports what it runs only when it
runs, so ``stockdag --help`` stays fast, and a command whose extra is not
installed names it in one line (``EXTRAS``). Output cut short by its reader
(``stockdag symbols | head -1``) ends quietly.
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys

from .. import __version__
from ..errors import StockdagError
from ..pipeline.modes import PREDICT_MODES  # noqa: F401  (re-exported)
from ..pipeline.modes import SERVING_MODES as SERVE_MODES  # noqa: F401  (re-exported: stockdag simulate serves in these modes)
from . import bench, cluster, demo, evaluate, fairness, overhead, predict, report, serve, sweep, symbols, train, webapp
from .common import pipeline_config, reach_scheduler, yaml_error  # noqa: F401  (re-exported)
from .options import Parser, did_you_mean

#: the commands' modules, in the order ``stockdag --help`` lists them
MODULES = (predict, symbols, train, evaluate, demo, overhead, fairness, cluster, serve, bench, webapp, sweep, report)
#: command -> the function that runs it (``stockdag simulate`` and ``plan`` are added by :func:`build_parser`)
COMMANDS = {m.__name__.rsplit(".", 1)[-1]: m.run for m in MODULES}
#: command -> its checks across options
CHECKS = {m.__name__.rsplit(".", 1)[-1]: m.check for m in MODULES if hasattr(m, "check")}
#: command -> the extra of pyproject.toml its work needs (the others run on the core)
EXTRAS = {"serve": "serve", "bench": "bench", "webapp": "webapp", "sweep": "experiments", "report": "experiments",
          "simulate": "simulate", "plan": "simulate"}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="stockdag", description="Stock-prediction inference pipeline as a Dask graph: run, serve and measure it.")
    parser.add_argument("--version", action="version", version=f"stockdag {__version__}", help="print the version and exit")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    nested = [sub]
    for module in MODULES:
        inner = module.add_parser(sub)
        if inner is not None:
            nested.append(inner)
    from .simulate import add_parsers as _add_simulate_parsers  # simulate, plan

    COMMANDS.update(_add_simulate_parsers(sub))
    for subparsers in nested:  # a command without its own description shows its one-line help in --help
        for choice in subparsers._choices_actions:
            command = subparsers.choices[choice.dest]
            command.description = command.description or choice.help[:1].upper() + choice.help[1:] + "."
    return parser


@contextlib.contextmanager
def quiet_distributed(quiet: bool = True):
    """Within the block, distributed logs warnings only; afterwards its level and ``logging.distributed`` are as before.

    Scoped, not global: a caller that runs :func:`main` in its own process (tests, notebooks) keeps its
    levels, and so does the configuration a cluster kind ships to processes it starts elsewhere.
    """
    if not quiet:
        yield
        return
    import dask

    log = logging.getLogger("distributed")
    level, imported = log.level, "distributed" in sys.modules
    # distributed sets its loggers' levels from this key when first imported (here, if not before)
    try:
        with dask.config.set({"logging.distributed": "warning"}):
            log.setLevel(logging.WARNING)
            yield
    finally:
        log.setLevel(level)
        default = dask.config.get("logging.distributed", None)
        if not imported and "distributed" in sys.modules and isinstance(default, str):
            log.setLevel(default.upper())  # first imported in the block: the level its import would have set outside it


def main(argv: list[str] | None = None) -> int:
    from .exits import end_resource_tracker_before_exit

    end_resource_tracker_before_exit()  # no process outlives the command, however it ends
    try:
        code = _main(argv)
        sys.stdout.flush()  # here, not at exit, so that a closed pipe is caught below
        return code
    except BrokenPipeError:
        # the reader stopped reading (`stockdag symbols | head -1`): no traceback, and none at exit either
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    try:  # usage errors, --help and --version end here with their exit status (2, 0, 0)
        args, unknown = parser.parse_known_args(argv)
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        command = sub.choices[args.command]
        if unknown:  # an option of this command misspelled (--as_of): name the one meant
            inner = next((a for a in command._actions if isinstance(a, argparse._SubParsersAction)), None)
            chosen = getattr(args, inner.dest, None) if inner is not None and inner.dest != argparse.SUPPRESS else None
            command = inner.choices[chosen] if chosen in getattr(inner, "choices", {}) else command
            command.error(did_you_mean(command, unknown))
        if args.command in CHECKS:
            CHECKS[args.command](sub.choices[args.command], args)
    except SystemExit as exc:
        return exc.code
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        with quiet_distributed(not args.verbose), pipeline_config(args):
            return COMMANDS[args.command](args)
    except StockdagError as exc:
        print(f"stockdag: error: {exc.message}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        missing, extra = (exc.name or "").partition(".")[0], EXTRAS.get(args.command)
        if extra is None or missing in ("", "stockdag"):
            raise
        print(f"stockdag: error: stockdag {args.command} needs {missing}, which the {extra} extra brings: "
              f"pip install 'stockdag[{extra}]'", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stockdag: interrupted", file=sys.stderr)
        return 130
