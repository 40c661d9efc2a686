"""``stockdag report PATH``: charts and REPORT.md of a run folder, or the index of a results folder."""
from __future__ import annotations

from ..errors import InvalidRequest
from .common import Command, arg

COMMAND = Command(
    "report", help="charts and REPORT.md of a run folder, or results/REPORT.md of a results folder",
    description="Rebuild everything from the folder alone: for a run folder (it has config.json) its charts "
                "and REPORT.md; for a folder of runs, each run's report where missing and the index REPORT.md.",
    arguments=(arg("path", help="results/<run-id> or results"),))
add_parser = COMMAND.add


def run(args) -> int:
    import os

    from ..lab.experiments import build, build_index

    if os.path.exists(os.path.join(args.path, "config.json")):
        build(args.path)
        print(os.path.join(args.path, "REPORT.md"))
    elif os.path.isdir(args.path):
        print(build_index(args.path))
    else:
        raise InvalidRequest(f"{args.path} is neither a run folder (with config.json) nor a folder of runs")
    return 0
