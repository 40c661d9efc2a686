"""Where run folders live, wherever a notebook was started from.

Jupyter starts a notebook in the notebook's own folder (``notebooks/`` or
``experiments/``), papermill and the scripts in the project root: a relative
``results`` must mean the project's results folder in every case.
"""
from __future__ import annotations

import os
import subprocess

from ...errors import InvalidRequest


def project_root(start: str | None = None) -> str | None:
    """The nearest folder, from ``start`` (the working directory) upwards, that holds the sweep notebook."""
    d = os.path.abspath(start or os.getcwd())
    while True:
        if os.path.exists(os.path.join(d, "experiments", "sweep.ipynb")):
            return d
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


def resolve(path: str | None, default: str) -> str:
    """``path`` as given when it exists or is absolute; else the same relative path under the project root.

    ``None`` means ``default`` (e.g. ``results``) under the project root, or in the
    working directory outside a checkout.
    """
    path = path or default
    if os.path.isabs(path) or os.path.exists(path):
        return path
    root = project_root()
    return os.path.join(root, path) if root else path


def committed(folder: str) -> bool:
    """Whether git tracks a file under ``folder`` (a committed run: what is derived from it goes elsewhere).

    False outside a git checkout or without git (an installed package has no committed runs).
    """
    try:
        out = subprocess.run(["git", "-C", folder, "ls-files", "--", "."], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and bool(out.stdout.strip())


def derived_out(run: str, out: str | None, what: str, option: str = "--out") -> str:
    """The folder that receives ``what`` is derived from ``run``: ``out`` if given, else the run folder itself,
    refused in one line (:class:`~stockdag.errors.InvalidRequest`) when git tracks it, so a committed run never
    changes unasked."""
    if out is not None:
        return out
    if committed(run):
        raise InvalidRequest(f"{run} is a committed run (git tracks it): give {option} DIR for {what} "
                             f"({option} {run} rewrites it there on purpose)")
    return run
