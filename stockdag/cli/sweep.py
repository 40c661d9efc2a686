"""``stockdag sweep PARAMS``: run (or resume) a sweep from a parameter file, without the notebook."""
from __future__ import annotations

from ..errors import InvalidRequest
from .common import Command, arg, one_line, yaml_error
from .options import run_id

COMMAND = Command(
    "sweep", help="run (or resume) a sweep from a parameter file, without the notebook",
    description="Run the sweep of experiments/sweep.ipynb directly: every configuration x load x repeat, "
                "written to OUT/RUN_ID/ (resumable), then its charts and REPORT.md.",
    arguments=(
        arg("params", help="a parameter file, e.g. experiments/params/default.yaml"),
        arg("--run-id", type=run_id, default=None, help="run folder name (default: a timestamp); an existing one is resumed"),
        arg("--out", default=None, help="folder that holds run folders (default: the file's out, or results)"),
    ))
add_parser = COMMAND.add


def run(args) -> int:
    import yaml

    from ..lab.experiments import SweepParams, build, run_sweep

    try:
        params = SweepParams.from_yaml(args.params, run_id=args.run_id, out=args.out)
    except yaml.YAMLError as exc:
        raise InvalidRequest(yaml_error(args.params, exc)) from None
    except (OSError, ValueError, TypeError) as exc:
        raise InvalidRequest(one_line(exc)) from None
    folder = run_sweep(params)
    build(folder)
    print(f"{folder}/REPORT.md")
    return 0
