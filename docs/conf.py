"""Sphinx configuration of the stockdag documentation (``make docs``; offline: no intersphinx, no remote assets)."""
from __future__ import annotations

import logging
import os
import pathlib
import re
import shutil
import sys

from sphinx.util.logging import get_node_location

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
exclude_patterns = ["_build", "research/_generated"]  # included by their pages, not pages themselves
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# every cross-reference must resolve: `make test` builds with -W -n
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(dask|distributed|pandas|numpy|np|pd|sklearn|datetime|dt|collections|typing|asyncio|pathlib|os|bokeh|fastapi|pydantic|concurrent)\..*"),
    (r"py:class", r"(optional|default.*|callable|mapping|sequence|iterable|array-like|file-like|path-like|str or .*|.* or None)"),
]
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
# each run's charts (charts.html and its PNGs) are copied beside its page, so the REPORT's links work in the site
html_extra_path = ["_extra"]
# sphinx-argparse's domain cannot resolve MyST's any-links; an informational notice, not a broken reference
suppress_warnings = ["myst.domains"]

RUN_LINK = re.compile(r"(?:results|research)/(?P<run>[^/]+)/REPORT.*?'?(?P<target>charts/[^' ]+)'?")


class _ChartLinks(logging.Filter):
    """Drop the missing-reference warning for a REPORT's link to a file under its run's ``charts/`` that exists.

    MyST resolves relative links against documents only; those files are not documents but are copied into the
    site by ``html_extra_path``. Any other missing reference, and a link to a chart that is absent, still fails.
    """

    def __init__(self, results: pathlib.Path):
        super().__init__()
        self.results = results

    def filter(self, record: logging.LogRecord) -> bool:
        where = getattr(record, "location", None)
        if where is not None and not isinstance(where, str | tuple):  # a node: its source file and line
            where = get_node_location(where)
        text = f"{where} {record.getMessage()}"
        if "target" not in text:
            return True
        m = RUN_LINK.search(text)
        return not (m and (self.results / m["run"] / m["target"]).is_file())


def _run_pages(app, config=None):
    """One page per committed run: ``research/<run>/REPORT.md`` includes ``results/<run>/REPORT.md``.

    ``results/REPORT.md`` links each run as ``<run>/REPORT.md``; included in ``research/results.md``, those links
    resolve to these generated pages (never copies: each is an include of the run's own file).
    """
    here = pathlib.Path(app.srcdir)
    results = here.parent / "results"
    extra = here / "_extra" / "research"
    shutil.rmtree(extra, ignore_errors=True)
    for report in sorted(results.glob("*/REPORT.md")):
        run = report.parent.name
        page = here / "research" / run / "REPORT.md"
        page.parent.mkdir(parents=True, exist_ok=True)
        text = (f"# Run {run}\n\n```{{include}} ../../../results/{run}/REPORT.md\n:relative-images:\n"
                f":heading-offset: 1\n```\n")
        if not page.exists() or page.read_text() != text:
            page.write_text(text)
        if (report.parent / "charts").is_dir():
            shutil.copytree(report.parent / "charts", extra / run / "charts")


def _accuracy_table(app, config=None):
    """``research/_generated/accuracy-table.md``: the committed evaluation output as a table (figures never typed)."""
    import json

    here = pathlib.Path(app.srcdir)
    rows = json.loads((here.parent / "results" / "accuracy" / "evaluate-default.json").read_text())
    lines = ["| model | direction accuracy | MAE (daily return) | days |", "|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['direction_accuracy']:.1%} | {r['mae']:.4f} | {r['days']} |" for r in rows]
    out = here / "research" / "_generated" / "accuracy-table.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text("\n".join(lines) + "\n")


def setup(app):
    app.connect("config-inited", _accuracy_table)
    app.connect("config-inited", _run_pages)  # before html_extra_path is checked
    results = pathlib.Path(app.srcdir).parent / "results"
    for handler in logging.getLogger("sphinx").handlers:
        handler.filters.insert(0, _ChartLinks(results))  # ahead of the filter that counts warnings (-W)
