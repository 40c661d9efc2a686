"""``stockdag report PATH``: charts and REPORT.md of a run folder, or the index of a results folder."""
from __future__ import annotations

from ..errors import InvalidRequest
from .common import Command, OneOf, arg, flag
from .options import output_dir

COMMAND = Command(
    "report", help="charts and REPORT.md of a run folder, or results/REPORT.md of a results folder",
    description="Rebuild everything from the folder alone: for a run folder (it has config.json) its charts "
                "and REPORT.md; for a folder of runs, each run's report where missing and the index REPORT.md. "
                "A run that git tracks (a committed one) is never rewritten unasked: give --out DIR, or --in-place.",
    arguments=(
        arg("path", help="results/<run-id> or results"),
        OneOf((arg("--out", type=output_dir, default=None, metavar="DIR",
                   help="run folder only: the folder that receives REPORT.md, charts/ and the CSV tables (default: the "
                        "run folder itself, refused for a committed run)"),
               flag("--in-place", "run folder only: rewrite the run folder's own REPORT.md, charts and tables, even "
                                  "when git tracks it")), required=False),
    ))
add_parser = COMMAND.add


def run(args) -> int:
    import os

    from ..lab.experiments import build, build_index
    from ..lab.experiments.paths import derived_out

    if os.path.exists(os.path.join(args.path, "config.json")):
        out = args.path if args.in_place else derived_out(args.path, args.out, "its REPORT.md and charts",
                                                          on_purpose="--in-place")
        os.makedirs(out, exist_ok=True)
        build(args.path, out=out)
        print(os.path.join(out, "REPORT.md"))
    elif not os.path.isdir(args.path):
        raise InvalidRequest(f"{args.path} is neither a run folder (with config.json) nor a folder of runs")
    elif args.out is not None or args.in_place:
        raise InvalidRequest(f"{'--out' if args.out is not None else '--in-place'} is for a run folder (with config.json); "
                             f"{args.path} is a folder of runs, whose index is {os.path.join(args.path, 'REPORT.md')}")
    else:
        print(build_index(args.path))
    return 0
