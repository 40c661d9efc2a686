"""``make test``'s plan for pytest-xdist (``-n 2 --dist loadfile``): whole files a worker, longest first, and the
files that use something of the whole host as one unit. tests/conftest.py imports these hooks; without xdist they
do nothing.
"""
from __future__ import annotations

import pytest

#: test files that make something of the whole host (the testbed's bridge takes the first free /24 of 198.18.0.0/15,
#: so two testbeds started at once can pick the same one): each group runs as one unit, one file after the other on
#: one worker
HOST_WIDE = {"tests/deploy/test_deploy_testbed.py": "testbed", "tests/experiments/test_sweep.py": "testbed",
             "tests/experiments/test_sweep_testbed.py": "testbed"}  # (main's, since the merge of branch 'answer')
#: the longest files (``pytest --durations``), longest first, handed out before all others: a long file handed out
#: last would finish alone on one worker while the other idles (an order only: a stale list costs time, never a result)
LONGEST_FIRST = ("tests/test_readme_examples.py", "tests/experiments/test_sweep.py", "tests/deploy/test_deploy_testbed.py",
                 "tests/benchmarks/test_overhead_bench.py", "tests/test_demo.py", "tests/webapp/test_webapp_browser.py",
                 "tests/test_fairness_probe.py", "tests/benchmarks/test_pipeline_bench.py", "tests/serve/test_service.py",
                 "tests/experiments/test_notebooks.py", "tests/test_cli_ctrl_c.py", "tests/deploy/test_deploy_ssh.py",
                 "tests/deploy/test_deploy_ec2.py", "tests/placement/test_placement_worker_loss.py",
                 "tests/deploy/test_deploy_local.py", "tests/test_executors.py")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile`` as xdist does it, but :data:`HOST_WIDE`'s groups one unit each, handed out in collection order."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class SuiteScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = super()._split_scope(nodeid)
            return HOST_WIDE.get(path, path)

    config.option.loadscopereorder = False  # keep LONGEST_FIRST's order (xdist's own hands out the files of most tests first)
    return SuiteScheduling(config, log)


def pytest_collection_modifyitems(config, items):
    """On a pytest-xdist worker, :data:`LONGEST_FIRST`'s files first (a stable sort: the rest keep their order)."""
    if hasattr(config, "workerinput"):  # a run without xdist keeps pytest's order
        rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
        items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))
