"""``make test``'s pytest-xdist plan (tests/xdist_plan.py), run on a throw-away suite of the same file names.

Each test of the inner suite appends ``<worker> <file>`` to a log as it starts, so the order and the worker
of every file are read from the inner run itself, not from the scheduler's internals.
"""
from __future__ import annotations

import os
import pathlib

import pytest
from xdist_plan import HOST_WIDE, LONGEST_FIRST

pytest_plugins = ("pytester",)

TESTS = os.path.dirname(os.path.abspath(__file__))
ROOT = pathlib.Path(TESTS).parent
RECORDING = """
import os

def {name}():
    with open(os.environ["PLAN_LOG"], "a") as f:
        f.write(os.environ.get("PYTEST_XDIST_WORKER", "main") + " " + __file__.rsplit("/tests/", 1)[1] + "\\n")
"""


def _suite(pytester, files: dict[str, int]) -> list[tuple[str, str]]:
    """Write ``files`` (path under tests/: number of tests), run them on two workers; the (worker, file) of each test."""
    pytester.makeconftest("from xdist_plan import pytest_collection_modifyitems, pytest_xdist_make_scheduler  # noqa: F401\n")
    for path, n in files.items():
        target = pytester.path / "tests" / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("".join(RECORDING.format(name=f"test_{i}") for i in range(n)))
    log = pytester.path / "plan.log"
    pytester.chdir()
    # xdist alone: the venv's other plugins (schemathesis, hypothesis, ...) would take most of the run to import
    env = {"PLAN_LOG": str(log), "PYTHONPATH": os.pathsep.join([TESTS, os.environ.get("PYTHONPATH", "")]),
           "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        for k in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_TESTRUNUID", "PYTEST_XDIST_WORKER_COUNT"):
            mp.delenv(k, raising=False)  # this suite may itself run on a worker
        result = pytester.runpytest_subprocess("-p", "xdist.plugin", "-n", "2", "--dist", "loadfile", "-p", "no:cacheprovider",
                                               "tests")
    result.assert_outcomes(passed=sum(files.values()))
    return [tuple(line.split()) for line in log.read_text().splitlines()]


def test_the_host_wide_files_run_on_one_worker_one_after_the_other(pytester):
    # as many files as workers or more: plain loadfile spreads them over both workers, at the same time
    grouped = [path for path, group in HOST_WIDE.items() if group == "testbed"]
    assert len(grouped) >= 2
    ran = _suite(pytester, {path.removeprefix("tests/"): 2 for path in grouped})
    assert len({worker for worker, _ in ran}) == 1  # one worker ran them all ...
    files = [f for _, f in ran]
    switches = sum(a != b for a, b in zip(files, files[1:]))
    assert switches == len(grouped) - 1  # ... one file after the other


def test_the_longest_files_are_handed_out_first(pytester):
    # xdist's loadfile hands out the files of most tests first; the plan hands out LONGEST_FIRST's order
    first, second = (path.removeprefix("tests/") for path in LONGEST_FIRST[:2])
    ran = _suite(pytester, {"test_aaa_many.py": 6, second: 1, first: 1})
    by_worker: dict[str, list[str]] = {}
    for worker, f in ran:
        by_worker.setdefault(worker, []).append(f)
    # each worker starts with one of the two longest (xdist's own order would start one on the file of most tests)
    assert sorted(files[0] for files in by_worker.values()) == sorted([first, second])


def test_every_file_that_can_start_a_testbed_is_in_the_testbed_group():
    # a file that starts a testbed checks for its precondition, network namespaces, first
    here = pathlib.Path(__file__).resolve()
    starting = {p.relative_to(ROOT).as_posix() for p in ROOT.glob("tests/**/test_*.py")
                if p.resolve() != here and "/proc/self/ns/net" in p.read_text()}
    assert starting and starting <= {path for path, group in HOST_WIDE.items() if group == "testbed"}
