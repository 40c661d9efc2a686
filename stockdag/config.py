"""Package defaults, loaded into ``dask.config`` under the ``stockdag`` key.

The YAML next to this file documents every key. Read a value with
``dask.config.get("stockdag.<key>", override_with=argument)`` so that an
explicit argument wins and ``None`` falls back to configuration.
"""
from __future__ import annotations

import copy
import os
from typing import Any

import dask.config
import yaml

_fn = os.path.join(os.path.dirname(__file__), "stockdag.yaml")

with open(_fn) as _f:
    _defaults = yaml.safe_load(_f)

dask.config.update_defaults(_defaults)


def get(key: str, override_with: Any = None) -> Any:
    """Return ``stockdag.<key>`` from dask.config unless ``override_with`` is given."""
    return dask.config.get(f"stockdag.{key}", override_with=override_with)


def snapshot() -> dict:
    """A copy of the whole resolved ``stockdag`` configuration (for requests, servers and run records).

    A copy, not the live dictionary: ``dask.config.set`` changes the live one in place and
    restores it when its block ends, which would silently change a snapshot taken inside it.
    """
    return copy.deepcopy(dask.config.get("stockdag"))


def shipped_spec(folder: str, name: str) -> str | None:
    """The file of the named spec ``name`` (``local-2``, ``width/w10``) shipped in ``folder``; None if none.

    ``folder`` is package-relative: ``deploy/clusters`` or ``pipeline/pipelines``. In a checkout both are
    links to ``experiments/``; a wheel carries the files themselves (package data in ``pyproject.toml``), so a name
    works wherever stockdag is installed.
    """
    path = os.path.join(os.path.dirname(__file__), folder, f"{name}.yaml")
    return path if os.path.isfile(path) else None


def shipped_specs(folder: str) -> list[str]:
    """Every spec name shipped in ``folder``, sorted (``width/w10`` for a file in a subfolder)."""
    root = os.path.join(os.path.dirname(__file__), folder)
    out = []
    for where, _dirs, files in os.walk(root, followlinks=True):
        rel = os.path.relpath(where, root)
        out += [os.path.normpath(os.path.join(rel, f[:-5])) for f in files if f.endswith(".yaml")]
    return sorted(out)
