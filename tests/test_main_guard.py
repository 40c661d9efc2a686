"""A script that starts worker processes without ``if __name__ == "__main__":`` gets one line naming the guard."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from stockdag.run.main_guard import unguarded_line

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GUARD = '`if __name__ == "__main__":`'


@pytest.mark.parametrize("source, line, unguarded", [
    ("import x\nx.go()\n", 2, True),
    ('import x\nif __name__ == "__main__":\n    x.go()\n', 3, False),
    ("import x\nif '__main__' == __name__:\n    x.go()\n", 3, False),
    ('import x\nif __name__ == "__main__" and True:\n    x.go(\n        1)\n', 4, False),
    ('def main():\n    go()\n\nmain()\nif __name__ == "__main__":\n    main()\n', 4, True),
    ('def main():\n    go()\n\nif __name__ == "__main__":\n    main()\n', 5, False),
    ('if __name__ != "__main__":\n    go()\n', 2, True),
    ('try:\n    if __name__ == "__main__":\n        go()\nfinally:\n    pass\n', 3, False),
])
def test_a_line_is_guarded_only_inside_the_main_block(source, line, unguarded):
    assert unguarded_line(source, line) is unguarded


def _run_script(tmp_path, body: str) -> subprocess.CompletedProcess:
    script = tmp_path / "use_it.py"
    script.write_text(textwrap.dedent(body))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")} | {"PYTHONPATH": ROOT}
    return subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("body, what", [
    # the README's "Use it" block pasted without its guard
    ("""\
     import stockdag
     r = stockdag.predict("AAPL", "2012-06-01")                       # centralized
     print(r.prediction, r.winner)
     r = stockdag.predict("AAPL", "2012-06-01", mode="distributed")  # on a temporary 2-worker LocalCluster
     print(r.to_dict()["trace"][0])
     """, "a LocalCluster's worker processes"),
    # the clusters guide's stockdag.deploy.start example without its guard
    (f"""\
     import stockdag.deploy
     with stockdag.deploy.start({os.path.join(ROOT, "experiments", "clusters", "local-2.yaml")!r}) as cluster:
         print(cluster.scheduler_address)
     """, "the worker processes of cluster spec"),
])
def test_a_saved_script_without_the_guard_gets_one_line_naming_it(tmp_path, body, what):
    proc = _run_script(tmp_path, body)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("stockdag.errors.MissingMainGuard: ") and GUARD in last and what in last, proc.stderr[-2000:]
    assert f"use_it.py:{4 if 'predict' in body else 2} " in last  # the line that starts the processes
    # nothing started: no worker's traceback, no "Nanny failed to start", only the raising call's short traceback
    assert "Nanny" not in proc.stderr and "bootstrapping" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) < 25, proc.stderr
