"""A stockdag page on the Dask dashboard: per-stage durations by worker and the active strategy.

:func:`add_routes` adds two routes to the scheduler's dashboard HTTP server
(``scheduler.http_application``, a tornado application that
``distributed.http.routing.RoutingApplication`` lets plugins extend):

``/stockdag``
    an HTML page: the placement strategy and its counters, then a table of
    the learned mean duration of each stage on each worker (with a bar
    scaled to the slowest entry and the number of observations), the
    planned-but-not-started seconds per worker and the recorded errors;
``/stockdag.json``
    the same data as JSON (:func:`page_data`).

:class:`~stockdag.placement.PlacementPlugin` calls :func:`add_routes` from its
``start(scheduler)`` hook, so both a client-registered plugin and the preload
(``dask scheduler --preload stockdag.placement.preload``) get the page. The
handlers look the plugin up by name on every request, so a plugin registered
again (a new strategy) shows at once. Extend the page by adding keys to
:func:`page_data` and rendering them in :func:`render`.
"""
from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING, Any

from tornado import web

if TYPE_CHECKING:
    from distributed import Scheduler

#: path of the page under the dashboard's prefix
PATH = "/stockdag"


def page_data(scheduler: Scheduler, plugin_name: str) -> dict[str, Any]:
    """Strategy, counters and learned per-stage, per-worker durations (seconds) as plain data."""
    # the plugin imports this module, so it is known by what it holds (its cost model), not by its class
    plugin: Any = scheduler.plugins.get(plugin_name)
    workers = sorted(str(ws.name) for ws in scheduler.workers.values())
    if getattr(plugin, "costs", None) is None:
        return {"strategy": None, "workers": workers, "stages": [], "durations": {}, "counts": {},
                "stats": {}, "pending": {}, "errors": [], "warnings": []}
    costs = plugin.costs
    durations: dict[str, dict[str, float]] = {}
    counts: dict[str, dict[str, int]] = {}
    for (stage, worker), mean in sorted(costs._mean.items()):
        durations.setdefault(stage, {})[worker] = mean
        counts.setdefault(stage, {})[worker] = costs.count(stage, worker)
    seen = sorted({w for per in durations.values() for w in per})
    names = {ws.address: str(ws.name) for ws in scheduler.workers.values()}
    return {
        "strategy": plugin.strategy_name,
        "loose": bool(plugin.strategy.loose),
        "workers": sorted(set(workers) | set(seen)),
        "stages": list(durations),
        "durations": durations,
        "counts": counts,
        "stats": dict(plugin.stats),
        "pending": {names.get(a, a): s for a, s in plugin.pending().items()},
        "errors": [e["error"] for e in plugin.errors],
        "warnings": list(plugin.warnings),
    }


def render(data: dict[str, Any]) -> str:
    """The HTML page for :func:`page_data`'s output."""
    esc = html.escape
    workers = data["workers"]
    top = max((v for per in data["durations"].values() for v in per.values()), default=0.0) or 1.0
    head = "".join(f"<th>{esc(w)}</th>" for w in workers)
    rows = []
    for stage in data["stages"]:
        cells = []
        for w in workers:
            v = data["durations"][stage].get(w)
            if v is None:
                cells.append("<td class=none>&ndash;</td>")
                continue
            n = data["counts"][stage].get(w, 0)
            cells.append(f"<td><div class=bar style='width:{100 * v / top:.1f}%'></div>"
                         f"{1e3 * v:.1f} ms <span class=n>({n})</span></td>")
        rows.append(f"<tr><th>{esc(stage)}</th>{''.join(cells)}</tr>")
    strategy = data["strategy"]
    if strategy is None:
        intro = "<p>No stockdag placement plugin is registered on this scheduler.</p>"
    else:
        stats = data["stats"]
        intro = (f"<p>Placement strategy <b id=strategy>{esc(strategy)}</b>"
                 f" ({'loose: Dask may move tasks' if data['loose'] else 'strict: tasks run where planned'}); "
                 f"{stats.get('graphs', 0)} graphs, {stats.get('tasks', 0)} tasks seen, "
                 f"{stats.get('restricted', 0)} restricted, {1e3 * stats.get('seconds', 0.0):.1f} ms planning.</p>")
    pending = ", ".join(f"{esc(w)} {s:.2f} s" for w, s in sorted(data["pending"].items())) or "none"
    problems = "".join(f"<li>{esc(x)}</li>" for x in data["errors"] + data["warnings"])
    table = (f"<table><tr><th>stage</th>{head}</tr>{''.join(rows)}</table>" if rows
             else "<p>No stockdag stage has finished on this cluster yet.</p>")
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>stockdag placement</title>
<meta http-equiv="refresh" content="5">
<style>
body {{ font-family: sans-serif; margin: 1.5em; }}
table {{ border-collapse: collapse; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: right; min-width: 9em; position: relative; }}
th {{ background: #f4f4f4; }}
td .bar {{ position: absolute; left: 0; top: 0; bottom: 0; background: #9ecae1; opacity: .5; z-index: -1; }}
td.none {{ color: #999; text-align: center; }}
.n {{ color: #777; font-size: 85%; }}
</style></head><body>
<h2>stockdag: per-stage durations by worker</h2>
{intro}
<p>Mean compute time of each stage on each worker, as the placement plugin learned it
(<span class=n>(observations)</span>); refreshes every 5 s. <a href="status">Dask status</a> &middot;
<a href="stockdag.json">JSON</a></p>
{table}
<p>Planned work not started yet: {pending}</p>
{"<h3>Errors and warnings</h3><ul>" + problems + "</ul>" if problems else ""}
</body></html>"""


class _Handler(web.RequestHandler):
    def initialize(self, scheduler: Scheduler, plugin_name: str, fmt: str) -> None:
        self.scheduler = scheduler
        self.plugin_name = plugin_name
        self.fmt = fmt

    def get(self) -> None:
        data = page_data(self.scheduler, self.plugin_name)
        if self.fmt == "json":
            self.set_header("Content-Type", "application/json")
            self.write(json.dumps(data))
        else:
            self.write(render(data))


def add_routes(scheduler: Scheduler, plugin_name: str) -> bool:
    """Add ``/stockdag`` and ``/stockdag.json`` to the scheduler's dashboard (once); False if it has none."""
    app = getattr(scheduler, "http_application", None)
    if app is None:
        return False
    if getattr(scheduler, "_stockdag_dashboard", False):
        return True
    import dask

    prefix = "/" + (dask.config.get("distributed.scheduler.http-prefix", None) or "").strip("/")
    prefix = prefix.rstrip("/")
    kwargs = {"scheduler": scheduler, "plugin_name": plugin_name}
    app.add_handlers(r".*", [
        (rf"{prefix}{PATH}/?", _Handler, {**kwargs, "fmt": "html"}),
        (rf"{prefix}{PATH}\.json", _Handler, {**kwargs, "fmt": "json"}),
    ])
    _add_menu_entry(scheduler)
    scheduler._stockdag_dashboard = True  # type: ignore[attr-defined]  # a mark on the scheduler: routes added once
    return True


def _add_menu_entry(scheduler: Scheduler) -> None:
    """List the page in the dashboard's own "More..." menu (its ``plots``, shared by every dashboard page)."""
    try:
        from distributed.dashboard.scheduler import template_variables
    except ImportError:  # no bokeh: no dashboard pages to put a menu entry in
        return
    plots = template_variables(scheduler)["plots"]  # memoized per scheduler: the dict every page renders from
    url = PATH.strip("/")
    if not any(p.get("url") == url for p in plots):
        plots.append({"url": url, "name": "Stockdag Placement"})
        plots.sort(key=lambda d: d["name"])
