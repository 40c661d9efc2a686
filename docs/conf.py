"""Sphinx configuration of the stockdag documentation (``make docs``; offline: no intersphinx, no remote assets)."""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.abspath(".."))  # the checkout, so autodoc documents this tree's code

import stockdag  # noqa: E402

project = "stockdag"
author = "stockdag developers"
release = stockdag.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinxarg.ext",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# every cross-reference must resolve: `make test` builds with -W -n
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(dask|distributed|pandas|numpy|np|pd|sklearn|datetime|dt|collections|typing|asyncio|pathlib|os|bokeh|fastapi|pydantic|concurrent)\..*"),
    (r"py:class", r"(optional|default.*|callable|mapping|sequence|iterable|array-like|file-like|path-like|str or .*|.* or None)"),
]
autodoc_default_options = {"members": False}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

html_theme = "pydata_sphinx_theme"
html_title = "stockdag"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "icon_links": [],
}
html_static_path: list[str] = []


def _run_pages(app):
    """One page per committed run: ``research/<run>/REPORT.md`` includes ``results/<run>/REPORT.md``.

    ``results/REPORT.md`` links each run as ``<run>/REPORT.md``; included in ``research/results.md``, those links
    resolve to these generated pages (never copies: each is an include of the run's own file).
    """
    import pathlib
    import shutil

    here = pathlib.Path(app.srcdir)
    results = here.parent / "results"
    out = here / "research" / "runs"
    shutil.rmtree(out, ignore_errors=True)
    for report in sorted(results.glob("*/REPORT.md")):
        run = report.parent.name
        page = here / "research" / run / "REPORT.md"
        page.parent.mkdir(parents=True, exist_ok=True)
        text = (f"# Run {run}\n\n```{{include}} ../../../results/{run}/REPORT.md\n:relative-images:\n"
                f":heading-offset: 1\n```\n")
        if not page.exists() or page.read_text() != text:
            page.write_text(text)


def setup(app):
    app.connect("builder-inited", _run_pages)
