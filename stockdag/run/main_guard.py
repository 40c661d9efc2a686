"""Refuse, in one line, to start worker processes from a script's top level without ``if __name__ == "__main__":``.

Worker processes started with the ``spawn`` method (Dask's default, ``distributed.worker.multiprocessing-method``)
import the parent's ``__main__`` script again. Unguarded, the script starts a cluster inside every starting worker,
multiprocessing refuses it, and Dask reports ``RuntimeError: Nanny failed to start.`` under hundreds of lines of
tracebacks. The same mistake is found here before any process starts, from the script's own source. (Dask's docs
show the guard in their LocalCluster script examples; so does the Python multiprocessing guide.)
"""
from __future__ import annotations

import ast
import sys

from ..errors import MissingMainGuard


def _is_main_test(test: ast.expr) -> bool:
    """``__name__ == "__main__"`` (either way round), alone or within an ``and``."""
    if isinstance(test, ast.BoolOp):
        return any(_is_main_test(v) for v in test.values)
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    return any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides) and \
        any(isinstance(s, ast.Constant) and s.value == "__main__" for s in sides)


def unguarded_line(source: str, line: int) -> bool:
    """Whether ``line`` of a module's ``source`` lies outside every ``if __name__ == "__main__":`` block."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.If) and _is_main_test(node.test) and node.body[0].lineno <= line <= (node.end_lineno or line):
            return False
    return True


def check_main_guard(what: str, method: str | None = None) -> None:
    """Raise :class:`~stockdag.errors.MissingMainGuard` if ``what`` (worker processes) would re-run this script.

    Only when the processes are spawned, the running ``__main__`` is a script file (not ``-c``, an interactive
    session or a notebook kernel) and the call comes from that script's top-level code outside the guard.
    """
    if method is None:
        import dask

        method = dask.config.get("distributed.worker.multiprocessing-method", "spawn")
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if method != "spawn" or main is None or not path or main.__name__ != "__main__":
        return  # fork and forkserver do not re-import __main__; in a spawned child it is __mp_main__
    spec = getattr(main, "__spec__", None)
    if spec is not None and (spec.name == "__main__" or spec.name.endswith(".__main__")):
        return  # `python -m package`: spawn does not import a package's __main__ again (multiprocessing.spawn)
    frame = sys._getframe(1)
    while frame is not None and not (frame.f_globals is vars(main) and frame.f_code.co_name == "<module>"):
        frame = frame.f_back
    if frame is None:
        return  # not called while the script's top level runs (a thread, a callback): nothing re-runs it
    try:
        with open(path, encoding="utf-8") as f:
            source = f.read()
        unguarded = unguarded_line(source, frame.f_lineno)
    except (OSError, SyntaxError, ValueError):
        return  # no readable source: leave it to multiprocessing's own message
    if unguarded:
        raise MissingMainGuard(
            f"{path}:{frame.f_lineno} starts {what} from the script's top level: put that code under "
            f'`if __name__ == "__main__":` (each worker process imports the script again; see Dask\'s LocalCluster docs)')
