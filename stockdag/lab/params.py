"""The one rule for a notebook's list parameters, whichever notebook and however they are given.

``papermill -p NAME VALUE`` passes ``'[IBM]'`` or ``'[0.5, 1.0]'`` as a string, ``-y``/``-f`` and
``execute_notebook(parameters=...)`` pass real lists, and a single value stands for a list of one. Every notebook
(``notebooks/*.ipynb``, ``experiments/*.ipynb`` through :class:`~stockdag.lab.experiments.SweepParams`) reads
its list parameters with :func:`as_list`, so ``-p symbols '[IBM]'`` means the same everywhere.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: strings papermill users type for "no value" (papermill itself turns ``None`` into None)
NONE = ("None", "none", "null", "~", "")


def as_list(value: Any, item: Callable[[Any], Any] | None = None) -> list | None:
    """A list from a list, a scalar, or a string holding YAML; None stays None.

    Parameters
    ----------
    value
        ``['IBM']``, ``'IBM'``, ``'[IBM, AAPL]'``, ``4``, ``'[1, 2]'``, ``None`` or ``'None'``.
    item
        Applied to every element (``int``, ``float``, ``str``), so ``'[1, 2]'`` and ``[1.0, 2]`` agree.

    Raises
    ------
    ValueError
        One line, when a string is not YAML (``'[IBM'``) or an element does not convert.
    """
    if isinstance(value, str) and value.strip() in NONE:
        return None
    if isinstance(value, str):
        import yaml

        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ValueError(f"cannot read {value!r} as a YAML list: write it like '[0.5, 1.0]' or '[AAPL, IBM]'") from None
    if value is None:
        return None
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if item is None:
        return values
    try:
        return [item(v) for v in values]
    except (TypeError, ValueError):
        raise ValueError(f"cannot read {values!r} as a list of {getattr(item, '__name__', item)}") from None
