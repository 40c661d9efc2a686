"""The command line checks its options when it parses them: every bad value is one line and exit 2.

:data:`BAD` names a bad value for every option that takes one, and a test walks the parser to make
sure no option is missing from it, so a new option cannot skip validation unnoticed.
"""
from __future__ import annotations

import argparse

import pytest

from stockdag.cli import build_parser, main

RUN = "results/20261129-091417-default"  # a committed run folder
# the positional arguments each command needs, so that only the option under test is wrong
BASE = {
    "predict": ["predict", "AAPL"], "symbols": ["symbols"], "train": ["train"], "evaluate": ["evaluate"],
    "demo": ["demo"], "overhead": ["overhead"], "fairness": ["fairness"], "serve": ["serve"], "bench": ["bench", "http://127.0.0.1:9", "--rate", "1"],
    "webapp": ["webapp"], "sweep": ["sweep", "experiments/params/default.yaml"], "report": ["report", "results"],
    "cluster plan": ["cluster", "plan", "local-2"], "cluster up": ["cluster", "up", "local-2"],
    "cluster status": ["cluster", "status"], "cluster down": ["cluster", "down"],
    "simulate calibrate": ["simulate", "calibrate", RUN], "simulate validate": ["simulate", "validate", RUN],
    "simulate holdout": ["simulate", "holdout", RUN],
    "simulate run": ["simulate", "run", RUN, "--rate", "1"], "plan": ["plan", "--rate", "1", "--p99", "1"],
}
POS_INT = ["0", "-1", "x", "1.5"]
POS_FLOAT = ["0", "-1", "nan", "inf", "x"]
DATE = ["2012-13-01", "2012-02-30", "01/02/2012", "x"]
SYMBOLS = ["A/B", "1AB"]
RUNS = ["/nonexistent/run", "results", "README.md"]  # missing, a folder without config.json, a file
DATA = {"--source": ["nope"], "--data-dir": ["/nonexistent/stockdag"]}
# no such file or name, a folder, a YAML file that is not a pipeline spec (a sweep's parameters)
PIPELINE = {"--pipeline": ["/nonexistent/spec.yaml", "nope", "", "/", "experiments/params/default.yaml"]}
CLUSTER = {"--workers": POS_INT, "--scheduler": ["", "tcp://", ":8786"], "--strategy": ["hfet", "Dask"]}
BAD = {
    "predict": {"symbol": SYMBOLS, "--as-of": DATE, "--mode": ["parallel"], "--profile": ["nope"], **DATA, **CLUSTER, **PIPELINE},
    "symbols": {"--profile": ["nope"], **DATA},
    "train": {"--symbols": SYMBOLS, "--train-end": DATE, "--window": POS_INT, **DATA, **PIPELINE},
    "evaluate": {"--symbols": SYMBOLS, "--start": DATE, "--end": DATE, "--step": POS_INT, "--window": POS_INT, **DATA, **PIPELINE},
    "demo": {"--requests": POS_INT, "--workers": POS_INT, "--in-flight": POS_INT, "--profile": ["nope"], "--seed": ["-1", "x"],
             "--scheduler": ["", "tcp://"], "--strategies": ["hfet", "dask,hfet", ","], "--granularity": ["task"], **PIPELINE},
    "overhead": {"--profiles": ["nope"], "--workers": POS_INT, "--requests": POS_INT, "--batch": POS_INT, "--rounds": ["-1", "x"],
                 "--granularities": ["task"], "--batching": ["turbo"], "--strategies": ["hfet", ","], "--submit": ["nope"],
                 "--block": POS_INT, "--seed": ["-1", "x"]},
    "fairness": {"--requests": POS_INT, "--profile": ["nope"], "--seed": ["-1", "x"]},
    "serve": {"--mode": ["nope"], "--replicas": POS_INT, "--workers": POS_INT, "--scheduler": ["", "tcp://"],
              "--strategy": ["hfet"], "--profile": ["nope"], "--host": ["", "a b", "http://x"], "--port": ["0", "65536", "99999", "x"],
              "--max-in-flight": POS_INT, "--deadline": POS_FLOAT, **DATA, **PIPELINE},
    "bench": {"url": ["127.0.0.1:8000", "ftp://127.0.0.1/", "http://", "http://127.0.0.1:99999"], "--rate": POS_FLOAT,
              "--users": POS_INT, "--arrivals": ["nope"], "--duration": POS_FLOAT, "--requests": POS_INT,
              "--warmup": ["-1", "nan", "x"], "--timeout": POS_FLOAT, "--connections": POS_INT, "--mix": ["nope"],
              "--zipf-s": POS_FLOAT, "--symbols": SYMBOLS, "--start": DATE, "--end": DATE, "--seed": ["-1", "x"],
              "--out": ["/nonexistent/dir/x.csv", "x.txt", "/tmp"]},
    "webapp": {"--port": ["-1", "65536", "x"], "--host": ["", "a b"], "--url": ["127.0.0.1:8000", "ftp://x"]},
    "sweep": {"--run-id": ["a/b", "..", ""]},
    "report": {"--out": ["README.md", "/nonexistent/dir/x"]},
    "simulate calibrate": {"run": RUNS, "--out": ["README.md", "/nonexistent/dir/x"]},
    "simulate validate": {"run": RUNS, "--repeats": POS_INT},
    "simulate holdout": {"run": RUNS, "--out": ["README.md", "/nonexistent/dir/x"], "--repeats": POS_INT, "--speeds": ["nope", "Fitted"]},
    "simulate run": {"run": RUNS, "--mode": ["nope"], "--workers": POS_INT, "--strategy": ["hfet", "Dask"], "--rate": POS_FLOAT,
                     "--users": POS_INT, "--arrivals": ["nope"], "--duration": POS_FLOAT, "--warmup": ["-1", "nan", "x"],
                     "--timeout": POS_FLOAT, "--seed": ["-1", "x"]},
    "plan": {"--rate": POS_FLOAT, "--p99": POS_FLOAT, "--profile": ["nope"], "--run": RUNS, "--results": ["/nonexistent/results", "README.md"],
             "--instance-types": ["c5.huge", "C5.large"], "--max-machines": POS_INT, "--max-hourly-usd": POS_FLOAT,
             "--requests": ["49", "0", "x"], "--out": ["/nonexistent/dir/x.yaml", "x.txt", "/tmp"],
             "--ami": ["ami-1", "x", ""], "--security-group": ["sg-1", "x", ""]},
}
# options whose value is any text (a path created on use, a name looked up later) have no bad value here
FREE = {("train", "--store"), ("webapp", "--store"), ("sweep", "params"), ("sweep", "--out"), ("report", "path"),
        ("cluster plan", "spec"), ("cluster up", "spec"), ("cluster down", "names"), ("cluster down", "--spec"),
        ("simulate run", "--spec"), ("fairness", "--out"), ("fairness", "--before-after")}


def _commands(parser=None, prefix=""):
    """(name, subparser) for every command and cluster action."""
    parser = parser or build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                full = f"{prefix} {name}".strip()
                nested = [a for a in sub._actions if isinstance(a, argparse._SubParsersAction)]
                if nested:
                    yield from _commands(sub, full)
                else:
                    yield full, sub


def _options_with_values(sub):
    for action in sub._actions:
        if action.nargs == 0 or isinstance(action, argparse._SubParsersAction):
            continue  # flags (--json, --help, ...) take no value
        yield action.option_strings[0] if action.option_strings else action.dest


def test_every_option_with_a_value_has_a_bad_value_in_the_table():
    missing = [(name, opt) for name, sub in _commands() for opt in _options_with_values(sub)
               if opt not in BAD.get(name, {}) and (name, opt) not in FREE]
    assert not missing, f"add a bad value to BAD (or the option to FREE): {missing}"


def _argv(command: str, option: str, value: str) -> list[str]:
    argv = list(BASE[command])
    if option.startswith("--"):
        return argv + [f"{option}={value}"]  # '=' so that values starting with '-' stay values
    position = {"symbol": 1, "url": 1, "run": 2}[option]
    argv[position] = value
    return argv


CASES = [(c, o, v) for c, opts in BAD.items() for o, values in opts.items() for v in values]


@pytest.mark.parametrize("command, option, value", CASES, ids=[f"{c}{o}={v!r}" for c, o, v in CASES])
def test_a_bad_value_is_one_line_and_exit_2(command, option, value, capsys):
    code = main(_argv(command, option, value))
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("stockdag: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert (option if option.startswith("--") else option) in err, err


@pytest.mark.parametrize("command", [name for name, _ in _commands()])
def test_every_command_has_help_and_a_description(command, capsys):
    code = main([*command.split(), "--help"])
    assert code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: stockdag {command}")
    sub = dict(_commands())[command]
    assert sub.description, f"stockdag {command} has no description"


def test_version(capsys):
    import stockdag

    code = main(["--version"])
    assert code == 0 and capsys.readouterr().out.strip() == f"stockdag {stockdag.__version__}"


# options that cannot apply: an error naming them (exit 2), before anything starts
CONFLICTS = [
    (["predict", "AAPL", "--mode", "centralized", "--workers", "2"], "--workers applies to --mode distributed only"),
    (["predict", "AAPL", "--mode", "centralized", "--strategy", "heft"], "--strategy applies to --mode distributed only"),
    (["predict", "AAPL", "--mode", "centralized", "--scheduler", "tcp://127.0.0.1:9"], "--scheduler applies to --mode distributed"),
    (["predict", "AAPL", "--workers", "2", "--scheduler", "tcp://127.0.0.1:9"], "cannot be combined with --scheduler"),
    (["predict", "AAPL", "--source", "bundled", "--data-dir", "."], "--data-dir is a folder of CSV files"),
    (["serve", "--mode", "centralized", "--strategy", "heft"], "--strategy applies to --mode distributed only"),
    (["serve", "--mode", "distributed", "--replicas", "2"], "--replicas applies to --mode replicated only"),
    (["serve", "--replicas", "2", "--workers", "2"], "give options of one mode"),
    (["serve", "--workers", "2", "--scheduler", "tcp://127.0.0.1:9"], "cannot be combined with --scheduler"),
    (["demo", "--workers", "2", "--scheduler", "tcp://127.0.0.1:9"], "cannot be combined with --scheduler"),
    (["evaluate", "--start", "2012-12-31", "--end", "2011-01-01"], "--start 2012-12-31 is after --end 2011-01-01"),
    (["bench", "http://127.0.0.1:9", "--users", "2", "--arrivals", "poisson"], "--arrivals applies to open loop"),
    (["bench", "http://127.0.0.1:9", "--users", "2", "--connections", "5"], "--connections applies to open loop"),
    (["bench", "http://127.0.0.1:9", "--rate", "1", "--requests", "5", "--duration", "5"], "not both"),
    (["bench", "http://127.0.0.1:9", "--rate", "1", "--raw", "--symbols", "AAPL"], "--symbols shapes the request mix"),
    (["bench", "http://127.0.0.1:9", "--rate", "1", "--mix", "uniform", "--zipf-s", "1.2"], "--zipf-s is the exponent of --mix zipf"),
    (["bench", "http://127.0.0.1:9", "--rate", "1", "--start", "2013-01-01"], "after it ends"),
    (["cluster", "down", "--spec", "x.yaml"], "with --all only"),
    (["simulate", "run", RUN, "--users", "2", "--arrivals", "poisson"], "--arrivals applies to open loop"),
]


@pytest.mark.parametrize("argv, message", CONFLICTS, ids=[" ".join(a) for a, _ in CONFLICTS])
def test_an_option_that_cannot_apply_is_an_error(argv, message, capsys):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err


def test_source_csv_needs_a_folder(capsys):
    code = main(["predict", "AAPL", "--source", "csv"])
    assert code == 2 and "--source csv needs --data-dir" in capsys.readouterr().err


@pytest.mark.parametrize("argv, mode", [
    (["predict", "AAPL"], "centralized"),
    (["predict", "AAPL", "--workers", "3"], "distributed"),
    (["predict", "AAPL", "--strategy", "heft"], "distributed"),
    (["predict", "AAPL", "--scheduler", "tcp://10.0.0.5:8786"], "distributed"),
    (["serve"], None),
    (["serve", "--replicas", "3"], "replicated"),
    (["serve", "--strategy", "heft"], "distributed"),
    (["serve", "--scheduler", "tcp://10.0.0.5:8786"], "distributed"),
])
def test_cluster_options_imply_their_mode(argv, mode, monkeypatch):
    """Issue 11 item 6 / issue 16 item 11: a scheduler address, a strategy or a worker count implies distributed mode."""
    import stockdag.cli as cli

    seen = {}
    monkeypatch.setitem(cli.COMMANDS, argv[0], lambda args: seen.update(vars(args)) or 0)
    assert main(argv) == 0
    assert seen["mode"] == mode


def test_data_dir_implies_csv(tmp_path, monkeypatch):
    import stockdag.cli as cli

    seen = {}
    monkeypatch.setitem(cli.COMMANDS, "symbols", lambda args: seen.update(vars(args)) or 0)
    assert main(["symbols", "--data-dir", str(tmp_path)]) == 0
    assert seen["source"] == "csv"


HEAVY = ("pandas", "numpy", "sklearn", "nltk", "distributed", "fastapi", "bokeh", "simpy", "stockdag.pipeline.stages", "stockdag.pipeline.graph", "stockdag.placement")


def test_help_imports_nothing_heavy():
    """Issue 16 item 17: every call took ~3 s to start, --help included; a command imports what it runs when it runs."""
    import subprocess
    import sys

    code = ("import sys\nfrom stockdag.cli import main\n"
            "for argv in (['--help'], ['predict', '--help'], ['bench', '--help'], ['serve', '--help'],\n"
            "             ['simulate', 'run', '--help'], ['plan', '--help'], ['overhead', '--help'], ['fairness', '--help']):\n"
            "    assert main(argv) == 0\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def _run_without_records(root):
    """A run folder whose point has its metadata but not its raw records."""
    folder = root / "run"
    (folder / "points").mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "points" / "p1.json").write_text('{"point": "p1", "config": {"mode": "centralized"}, "loop": "open", "load": 1}')
    return folder


@pytest.mark.parametrize("action", [["calibrate"], ["validate"], ["holdout"], ["run", "--rate", "1"]])
@pytest.mark.parametrize("folder, message", [
    (lambda root: root / "missing", "does not exist"),
    (lambda root: (root / "config.json").write_text("{}") and root, "has no points/ folder"),
    (_run_without_records, "point p1 has no records"),
])
def test_a_run_folder_without_records_is_one_line(action, folder, message, tmp_path, capsys):
    path = str(folder(tmp_path))
    code = main(["simulate", action[0], path, *action[1:]])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert not (tmp_path / "run" / "simulate").exists() and not (tmp_path / "simulate").exists()  # nothing written


@pytest.mark.parametrize("argv, message", [
    (["predict", "AAPL", "--as-of", "2012-13-01"], "argument --as-of: invalid date '2012-13-01': month must be in 1..12"),
    (["evaluate", "--end", "2012-02-30"], "argument --end: invalid date '2012-02-30': day is out of range for month"),
    (["predict", "AAPL", "--as-of", "01/02/2012"], "argument --as-of: malformed date '01/02/2012': expected YYYY-MM-DD"),
])
def test_a_date_in_the_right_form_says_which_part_is_wrong(argv, message, capsys):
    """Issue 16 item 15: '2012-13-01' was called malformed and told to be YYYY-MM-DD, which it is."""
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_an_impossible_as_of_date_over_http_says_which_part_is_wrong():
    from stockdag.errors import InvalidRequest
    from stockdag.pipeline.request import parse_date

    with pytest.raises(InvalidRequest, match=r"invalid as-of date '2012-13-01': month must be in 1\.\.12"):
        parse_date("2012-13-01")


def test_strategy_errors_name_each_strategy_once(capsys):
    """Issue 16 item 15: the strategy error listed "dask" twice (the registry holds it too)."""
    from stockdag.errors import InvalidRequest
    from stockdag.lab.experiments import SweepParams
    from stockdag.placement import STRATEGIES
    from stockdag.serve import create_app

    assert main(["predict", "AAPL", "--strategy", "hfet"]) == 2
    messages = [capsys.readouterr().err]
    with pytest.raises(InvalidRequest) as exc:
        create_app("distributed", strategy="hfet")
    messages.append(exc.value.message)
    with pytest.raises(ValueError) as exc:
        SweepParams.from_yaml("experiments/params/default.yaml", strategy=["hfet"])
    messages.append(str(exc.value))
    for message in messages:
        listed = message.split("choose ")[1].split(": ", 1)[-1].split(" (see")[0].replace("from ", "").strip()
        assert sorted(x.strip() for x in listed.split(",")) == sorted(STRATEGIES), message


# -- issue 24 item 29: small CLI friction
@pytest.mark.parametrize("argv, hint", [
    (["predict", "AAPL", "--as_of", "2012-01-03"], "(did you mean --as-of?)"),
    (["serve", "--max_in_flight", "3"], "(did you mean --max-in-flight?)"),
    (["cluster", "down", "--spce", "x.yaml"], "(did you mean --spec?)"),  # a subcommand's own options
])
def test_a_misspelled_option_names_the_one_meant(argv, hint, capsys):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and "unrecognized arguments: " in err and hint in err and err.count("\n") == 1, err


def test_help_shows_a_configured_default_with_its_value(capsys):
    import dask

    with dask.config.set({"stockdag.serve.deadline": 42.5}):
        assert main(["serve", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: 42.5, stockdag.serve.deadline)" in text


@pytest.mark.parametrize("command", ["predict", "serve"])
def test_more_workers_than_cores_is_said(command, monkeypatch, capsys):
    import os

    from stockdag.cli import CHECKS

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    for workers, said in (("2", False), ("3", True)):
        args = parser.parse_args([*BASE[command], "--workers", workers])
        CHECKS[command](sub, args)  # the checks main runs before the command starts anything
        assert ("note: 3 workers on 2 cores" in capsys.readouterr().err) is said
