"""Issue 15: one home per command (stockdag/cli/<command>.py), the logic in the package, and a quiet closed pipe."""
from __future__ import annotations

import importlib
import subprocess
import sys

import stockdag.cli as cli


def test_every_command_has_its_own_module():
    for module in cli.MODULES:
        name = module.__name__.rsplit(".", 1)[-1]
        assert importlib.import_module(f"stockdag.cli.{name}") is module
        assert cli.COMMANDS[name] is module.run and callable(module.add_parser)
        assert cli.CHECKS.get(name) is getattr(module, "check", None)
    parser_commands = set(cli.build_parser()._subparsers._group_actions[0].choices)
    assert {m.__name__.rsplit(".", 1)[-1] for m in cli.MODULES} <= parser_commands <= set(cli.COMMANDS)


def test_the_cli_builds_no_bench_config_and_sweeps_no_ec2_region_itself():
    """The work lives in the package: stockdag.lab.bench.prepare and stockdag.deploy.orphans."""
    import inspect

    from stockdag.deploy.orphans import terminate_orphans
    from stockdag.lab.bench import prepare

    bench_source, cluster_source = inspect.getsource(cli.bench), inspect.getsource(cli.cluster)
    assert "BenchConfig(" not in bench_source and "RequestMix(" not in bench_source and "prepare(" in bench_source
    assert "terminate_tagged" not in cluster_source and "terminate_orphans" in cluster_source
    assert callable(prepare) and callable(terminate_orphans)


def test_a_reader_that_stops_reading_gets_no_traceback():
    """`stockdag symbols | head -1`: the pipe closes before the output is written."""
    proc = subprocess.Popen([sys.executable, "-m", "stockdag.cli", "symbols"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the command prints anything
    _, err = proc.communicate(timeout=120)
    err = err.decode()
    assert "Traceback" not in err and "BrokenPipeError" not in err and "Exception ignored" not in err, err
    assert proc.returncode == 1
