"""The Bokeh document of ``stockdag webapp``: the form, the live charts, the summary and the comparison.

One :class:`LoadTestPage` per browser session. The load generator runs in a
:class:`~stockdag.lab.webapp.runs.LiveRun` thread; a periodic callback on the
document pulls the records that arrived since the last tick and streams them
to the charts, and the thread's end is handed back with
``doc.add_next_tick_callback`` (the one thread-safe entry into a document),
so nothing ever blocks the Bokeh event loop. Finished runs go to the
:class:`~stockdag.lab.webapp.runs.RunStore`; the comparison view reads them back,
so it survives page reloads.

Elements the browser test reads carry CSS classes ``sd-*`` (on the widget's
host element) or ``data-stat`` attributes (inside the Divs' HTML).
"""
from __future__ import annotations

import html
import threading
from functools import partial

from bokeh.core.properties import value
from bokeh.layouts import column, row
from bokeh.models import (
    BoxAnnotation,
    Button,
    ColumnDataSource,
    Div,
    FactorRange,
    HoverTool,
    MultiChoice,
    RadioButtonGroup,
    Select,
    TextInput,
)
from bokeh.palettes import Category10_10
from bokeh.plotting import figure

from ... import config
from ...pipeline.spec import DEFAULT as DEFAULT_PIPELINE
from ...pipeline.table import order_stage_ids, stage_table
from ..bench import ARRIVALS, MIN_SAMPLES, MIXES
from ..bench.loadgen import DEFAULT_TIMEOUT
from .charts import gantt, latency_cdf, throughput_series
from .form import FormError, parse_form, parse_url
from .live import LiveRun
from .probe import probe
from .stats import TABLE_PERCENTILES, LiveStats, tail_percentiles
from .store import RunStore

_CSS = """
<style>
table.sd {border-collapse: collapse; font-size: 13px; margin: 4px 0;}
table.sd th, table.sd td {border: 1px solid #ddd; padding: 3px 8px; text-align: right;}
table.sd th {background: #f4f4f4;}
table.sd td.l, table.sd th.l {text-align: left;}
.sd-err {color: #b00020;} .sd-ok {color: #1b5e20;} .sd-muted {color: #666;}
</style>
"""


def _fmt(v, digits: int = 2) -> str:
    return "&ndash;" if v is None else f"{v:.{digits}f}"


def stats_table(requests: int, ok: int, errors: dict, pct: dict, offered: float | None, achieved: float | None,
                pct_all: dict | None = None, loop: str = "open") -> str:
    """HTML of the live/final numbers: counts, percentiles (ms) of the successful and of all requests, throughput,
    errors by kind. Closed loop offers no rate: its column is the requests sent per second."""
    pct_all = pct_all or {}
    cells = [("requests", "requests", str(requests)), ("ok", "ok", str(ok)), ("errors", "errors", str(sum(errors.values())))]
    cells += _percentile_cells(TABLE_PERCENTILES, pct, ok, "", "")
    cells += _percentile_cells(ALL_PERCENTILES, pct_all, requests, "all-", "all ")
    cells += [("offered" if loop == "open" else "sent", "offered req/s" if loop == "open" else "sent req/s", _fmt(offered, 1)),
              ("achieved", "achieved ok/s", _fmt(achieved, 1))]
    head = "".join(f"<th>{html.escape(h)}</th>" for _, h, _ in cells)
    body = "".join(f'<td data-stat="{k}">{v}</td>' for k, _, v in cells)
    kinds = ", ".join(f"{html.escape(k)} {n}" for k, n in sorted(errors.items())) or "none"
    return (f"{_CSS}<table class=sd><tr>{head}</tr><tr>{body}</tr></table>"
            f"<div class=sd-muted>errors by kind: <span data-stat=error-kinds>{kinds}</span>. "
            "p50..max: successful requests; all: every measured request, a failure with the time it took, "
            "a stopped one (cancelled) with the time it had waited.</div>")


#: percentiles of the all-requests distribution shown beside the successful ones
ALL_PERCENTILES = ("p50", "p99", "max")


def _percentile_cells(names, pct: dict, n: int, key: str, title: str) -> list[tuple[str, str, str]]:
    """(data-stat key, header, value) of the percentiles ``names`` of a sample of ``n``: only those the sample
    supports (:func:`stockdag.lab.bench.supported`: no p99 below 100 requests), and then the max reads
    ``max of n``, as in the report. Before any request (``pct`` empty) every column shows a dash."""
    return [(f"{key}{p}", f"{title}{label} ms", _fmt(v)) for p, label, v, ok in tail_percentiles(names, pct, n) if ok]


def _comparison_cells(lat: dict, n: int) -> str:
    """The percentile cells of one run in the comparison table, by the live table's rule
    (:func:`~stockdag.lab.webapp.stats.tail_percentiles`): a dash where the run's ``n`` successful requests
    do not support the percentile, and then the max says it is the max of n."""
    cells = []
    for p, label, v, ok in tail_percentiles(TABLE_PERCENTILES, lat, n):
        if not ok:
            cells.append(f'<td data-stat="{p}" title="{p} needs {MIN_SAMPLES[p]} requests; this run has {n} ok">'
                         "&ndash;</td>")
        else:
            note = f" <span class=sd-muted>({label})</span>" if label != p else ""
            cells.append(f'<td data-stat="{p}">{_fmt(v)}{note}</td>')
    return "".join(cells)


class LoadTestPage:
    """Builds one session's document and reacts to it. ``store`` and ``default_url`` come from the server."""

    TPUT_TITLE = {"open": "throughput per second: offered (by intended send time) vs achieved (ok responses)",
                  "closed": "throughput per second: sent (closed loop offers no rate) vs achieved (ok responses)"}
    TPUT_LEGEND = {"open": "offered", "closed": "sent"}

    def __init__(self, doc, store: RunStore, default_url: str | None = None):
        self.doc = doc
        self.store = store
        self.live: LiveRun | None = None
        self.stats: LiveStats | None = None
        self._finished = True
        self._probe_seq = 0
        self.interval = float(config.get("webapp.update_interval"))
        self.loop_kind = "open"
        self.max_points = int(config.get("webapp.max_points"))
        self._build(default_url or config.get("webapp.url"))
        doc.title = "stockdag load test"
        doc.add_root(self.layout)
        doc.add_periodic_callback(self._tick, int(1000 * self.interval))
        doc.on_session_destroyed(self._session_destroyed)
        self._probe_url()
        self._refresh_runs(select_new=None)

    # ------------------------------------------------------------------ layout
    def _build(self, url: str) -> None:
        b = partial(config.get)
        w = {"width": 130}
        self.url = TextInput(title="server URL", value=url, width=320, css_classes=["sd-url"])
        self.label = TextInput(title="run label (optional)", placeholder="e.g. centralized", width=200,
                               css_classes=["sd-label"])
        self.loop = RadioButtonGroup(labels=["open loop (rate)", "closed loop (users)"], active=0,
                                     css_classes=["sd-loop"])
        self.rate = TextInput(title="rate (requests/s)", value=str(b("webapp.rate")), css_classes=["sd-rate"], **w)
        self.users = TextInput(title="users", value=str(b("webapp.users")), disabled=True, css_classes=["sd-users"], **w)
        self.arrivals = Select(title="arrivals", value=b("bench.arrivals"), options=list(ARRIVALS), **w)
        self.duration = TextInput(title="duration (s)", value=f"{float(b('bench.duration')):g}",
                                  css_classes=["sd-duration"], **w)
        self.warmup = TextInput(title="warm-up (s, excluded)", value=f"{float(b('bench.warmup')):g}",
                                css_classes=["sd-warmup"], **w)
        self.timeout = TextInput(title="timeout (s)", value=f"{float(b('bench.timeout') or DEFAULT_TIMEOUT):g}",
                                 css_classes=["sd-timeout"], **w)
        self.distribution = Select(title="request mix", value=b("bench.distribution"), options=list(MIXES), **w)
        self.symbols = TextInput(title="symbols (blank: all)", placeholder="e.g. AAPL IBM", css_classes=["sd-symbols"],
                                 width=160)
        self.start = TextInput(title="as-of from", value=str(b("bench.start")), css_classes=["sd-start-date"], **w)
        self.end = TextInput(title="as-of to", value=str(b("bench.end")), css_classes=["sd-end-date"], **w)
        self.seed = TextInput(title="seed", value=str(b("bench.seed")), width=80, css_classes=["sd-seed"])
        self.start_button = Button(label="Start", button_type="success", width=100, css_classes=["sd-start"])
        self.stop_button = Button(label="Stop", button_type="danger", width=100, disabled=True, css_classes=["sd-stop"])
        self.message = Div(text="", css_classes=["sd-message"], sizing_mode="stretch_width")
        self.target_info = Div(text="", css_classes=["sd-target"], sizing_mode="stretch_width")
        self.stats_div = Div(text=stats_table(0, 0, {}, {}, None, None), css_classes=["sd-stats"])
        self.summary_div = Div(text="", css_classes=["sd-summary"], sizing_mode="stretch_width")

        self.loop.on_change("active", self._loop_changed)
        self.url.on_change("value", lambda attr, old, new: self._probe_url())
        self.start_button.on_click(self._start)
        self.stop_button.on_click(self._stop)

        # -- live charts
        tools = "pan,box_zoom,wheel_zoom,reset,save"
        self.points = ColumnDataSource({"t": [], "latency_ms": [], "outcome": [], "color": [], "index": [],
                                        "warmup": []})
        p = figure(title="latency of each request (ms) by intended send time (s)", height=280,
                   sizing_mode="stretch_width", tools=tools, output_backend="webgl")
        p.scatter("t", "latency_ms", source=self.points, color="color", legend_field="outcome", size=5, alpha=0.7)
        p.add_tools(HoverTool(tooltips=[("request", "@index"), ("latency", "@latency_ms{0.0} ms"),
                                        ("outcome", "@outcome")]))
        p.legend.location = "top_left"
        p.xaxis.axis_label, p.yaxis.axis_label = "s since start", "ms"
        self.warmup_box = BoxAnnotation(left=0, right=0, fill_color="#999999", fill_alpha=0.15)
        p.add_layout(self.warmup_box)
        self.scatter_fig = p

        self.hist = ColumnDataSource({"left": [], "right": [], "count": []})
        h = figure(title="latency histogram (successful measured requests)", height=280, width=420, tools=tools)
        h.quad(left="left", right="right", top="count", bottom=0, source=self.hist, fill_color="#4c72b0",
               line_color="white")
        h.xaxis.axis_label, h.yaxis.axis_label = "ms", "requests"

        self.tput = ColumnDataSource({"t": [], "offered": [], "achieved": []})
        t = figure(title=self.TPUT_TITLE["open"], height=260, sizing_mode="stretch_width", tools=tools)
        # "offered" in open loop (by intended send time); closed loop offers no rate: the same line is "sent"
        t.line("t", "offered", source=self.tput, color="#888888", line_dash="dashed", line_width=2, legend_label="offered")
        t.line("t", "achieved", source=self.tput, color="#2ca02c", line_width=2, legend_label="achieved")
        t.scatter("t", "achieved", source=self.tput, color="#2ca02c", size=4)
        t.legend.location = "bottom_right"
        t.xaxis.axis_label, t.yaxis.axis_label = "s since start", "requests/s"
        self.tput_fig = t

        self.stage_src = ColumnDataSource({"id": [], "stage": [], "ms": [], "n": []})
        # the default pipeline's stages until traces arrive; then the stages the server's pipeline ran
        default_ids = [st.id for st in stage_table(DEFAULT_PIPELINE)]
        s = figure(title="mean time per stage (ms, from traces)", height=300, width=420,
                   y_range=FactorRange(*reversed(default_ids)), tools="hover,save",
                   tooltips=[("stage", "@id @stage"), ("mean", "@ms{0.00} ms"), ("requests", "@n")])
        s.hbar(y="id", right="ms", height=0.7, source=self.stage_src, color="#8172b2")
        s.xaxis.axis_label = "ms"
        self.stage_fig = s

        self.gantt_src = ColumnDataSource({"id": [], "stage": [], "worker": [], "left": [], "right": [], "ms": [],
                                           "color": []})
        g = figure(title="one request: which worker ran each stage", height=300, sizing_mode="stretch_width",
                   y_range=FactorRange(*reversed(default_ids)), tools="hover,save,reset,box_zoom",
                   tooltips=[("stage", "@id @stage"), ("worker", "@worker"), ("ms", "@ms{0.00}")])
        g.hbar(y="id", left="left", right="right", height=0.7, source=self.gantt_src, color="color",
               legend_field="worker")
        g.legend.location = "bottom_right"
        g.xaxis.axis_label = "ms since the request's first stage"
        self.gantt_fig = g
        self.gantt_workers = Div(text="", css_classes=["sd-gantt-workers"])
        self.no_traces = Div(text="<span class=sd-muted>Stage charts fill in when the server returns stockdag "
                                  "traces.</span>")

        # -- comparison
        self.compare = MultiChoice(title="earlier runs to compare (kept on the server across reloads)",
                                   options=[], value=[], sizing_mode="stretch_width", css_classes=["sd-compare"])
        self.compare.on_change("value", lambda attr, old, new: self._draw_comparison())
        self.compare_table = Div(text="", css_classes=["sd-compare-table"], sizing_mode="stretch_width")
        self.cdf_src = ColumnDataSource({"xs": [], "ys": [], "label": [], "color": []})
        c = figure(title="latency distribution: percentile of requests at or below a latency", height=300,
                   sizing_mode="stretch_width", x_axis_type="log", tools=tools)
        c.multi_line("xs", "ys", source=self.cdf_src, color="color", legend_field="label", line_width=2)
        c.legend.location = "bottom_right"
        c.xaxis.axis_label, c.yaxis.axis_label = "latency (ms, log scale)", "percentile"
        self.cmp_tput_src = ColumnDataSource({"xs": [], "ys": [], "label": [], "color": []})
        ct = figure(title="achieved throughput over time (ok responses/s)", height=300, sizing_mode="stretch_width",
                    tools=tools)
        ct.multi_line("xs", "ys", source=self.cmp_tput_src, color="color", legend_field="label", line_width=2)
        ct.legend.location = "bottom_right"
        ct.xaxis.axis_label, ct.yaxis.axis_label = "s since start", "ok/s"

        header = Div(text="<h2 style='margin:4px 0'>stockdag load test</h2><div class=sd-muted>Sends requests to a "
                          "server from this machine and measures each one (latency from its intended send time, so a "
                          "stalled server cannot hide its stall). A stockdag server's base URL gets a seeded mix of "
                          "<code>/predict/{symbol}?as_of=</code> requests; any other URL is requested as given.</div>",
                     sizing_mode="stretch_width")
        self.layout = column(
            header,
            row(self.url, self.label, self.loop, self.rate, self.users, self.arrivals),
            row(self.duration, self.warmup, self.timeout, self.distribution, self.symbols, self.start, self.end,
                self.seed),
            row(self.start_button, self.stop_button, self.message, sizing_mode="stretch_width"),
            self.target_info,
            self.stats_div,
            row(self.scatter_fig, h, sizing_mode="stretch_width"),
            t,
            self.no_traces,
            row(s, column(g, self.gantt_workers, sizing_mode="stretch_width"), sizing_mode="stretch_width"),
            self.summary_div,
            Div(text="<h3 style='margin:4px 0'>Compare runs</h3>"),
            self.compare,
            self.compare_table,
            row(c, ct, sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )

    # ------------------------------------------------------------------ form
    def form_values(self) -> dict:
        def val(w):
            return w.value_input if w.value_input not in (None, "") or w.value in (None, "") else w.value

        return {
            "url": val(self.url), "label": val(self.label), "loop": "open" if self.loop.active == 0 else "closed",
            "rate": val(self.rate), "users": val(self.users), "arrivals": self.arrivals.value,
            "duration": val(self.duration), "warmup": val(self.warmup), "timeout": val(self.timeout),
            "distribution": self.distribution.value, "symbols": val(self.symbols), "start": val(self.start),
            "end": val(self.end), "seed": val(self.seed),
        }

    def _say(self, text: str, kind: str = "muted") -> None:
        self.message.text = f"{_CSS}<span class=sd-{kind} data-stat=message>{html.escape(text)}</span>"

    def _loop_changed(self, attr, old, new) -> None:
        is_open = new == 0
        self.rate.disabled = self.arrivals.disabled = not is_open
        self.users.disabled = is_open

    # ------------------------------------------------------------------ probing the URL
    def _probe_url(self) -> None:
        try:
            url = parse_url(self.url.value)
        except FormError as exc:
            self.target_info.text = f"{_CSS}<span class=sd-err>{html.escape(str(exc))}</span>"
            return
        self._probe_seq += 1
        seq = self._probe_seq
        self.target_info.text = f"{_CSS}<span class=sd-muted>checking {html.escape(url)} ...</span>"

        def work():
            import asyncio

            target = asyncio.run(probe(url, 3.0))
            self.doc.add_next_tick_callback(partial(self._show_target, seq, target))

        threading.Thread(target=work, name="stockdag-webapp-probe", daemon=True).start()

    def _show_target(self, seq: int, target) -> None:
        if seq != self._probe_seq:
            return  # an older probe answered after a newer URL was entered
        kind = "ok" if target.reachable else "err"
        text = f"{_CSS}<span class=sd-{kind}>{html.escape(target.describe())}</span>"
        dash = target.dashboard  # an http(s) URL or None, whatever the server sent
        if dash:
            text += f' &middot; <a href="{html.escape(dash)}" target="_blank" data-stat=dashboard>Dask dashboard</a>'
            if (target.health or {}).get("strategy") not in (None, "dask"):
                page = dash.rsplit("/", 1)[0] + "/stockdag"
                text += f' &middot; <a href="{html.escape(page)}" target="_blank">stockdag placement page</a>'
        self.target_info.text = text

    # ------------------------------------------------------------------ start / stop
    def _start(self) -> None:
        if self.live is not None and self.live.active:
            return
        try:
            params = parse_form(self.form_values())
        except FormError as exc:
            self._say(str(exc), "err")
            return
        self.stats = LiveStats(warmup=params["bench"]["warmup"])
        self.loop_kind = "open" if "rate" in params["bench"] else "closed"
        self.tput_fig.title.text = self.TPUT_TITLE[self.loop_kind]
        self.tput_fig.legend.items[0].label = value(self.TPUT_LEGEND[self.loop_kind])
        self.points.data = {k: [] for k in self.points.data}
        self.hist.data = {k: [] for k in self.hist.data}
        self.tput.data = {k: [] for k in self.tput.data}
        self.stage_src.data = {k: [] for k in self.stage_src.data}
        self.gantt_src.data = {k: [] for k in self.gantt_src.data}
        self.gantt_workers.text = ""
        self._gantt_index = None
        self.warmup_box.right = params["bench"]["warmup"]
        self.stats_div.text = stats_table(0, 0, {}, {}, None, None, loop=self.loop_kind)
        self.summary_div.text = ""
        self._finished = False
        self.live = LiveRun(params, self.store, on_end=lambda: self.doc.add_next_tick_callback(self._finish)).start()
        self.start_button.disabled = True
        self.stop_button.disabled = False
        self._say(self.live.message)

    def _stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self._say("stopping ...")

    def _session_destroyed(self, session_context) -> None:
        if self.live is not None:
            self.live.stop()

    # ------------------------------------------------------------------ streaming
    def _pull(self) -> None:
        live, stats = self.live, self.stats
        rows = live.rows
        if len(rows) <= stats.seen:
            return
        new = rows[stats.seen:len(rows)]
        points = stats.add(new)
        self.points.stream(points, rollover=self.max_points)
        self.hist.data = stats.histogram()
        self.tput.data = stats.throughput(until=None if not live.active else live.elapsed)
        means = stats.stage_means()
        if means["id"]:
            if list(self.stage_fig.y_range.factors) != list(reversed(means["id"])):
                self.stage_fig.y_range.factors = list(reversed(means["id"]))
            self.stage_src.data = means
            self.no_traces.visible = False
        if stats.last_trace_index is not None and stats.last_trace_index != self._gantt_index:
            self._gantt_index = stats.last_trace_index
            self._draw_gantt(stats.last_trace, stats.last_trace_index)
        self.stats_div.text = stats_table(stats.requests, stats.ok, dict(stats.errors), stats.percentiles(), None, None,
                                          stats.percentiles_all(), loop=self.loop_kind)

    def _draw_gantt(self, trace, index: int) -> None:
        data = gantt(trace)
        workers = sorted(set(data["worker"]))
        colors = {w: Category10_10[i % 10] for i, w in enumerate(workers)}
        data["color"] = [colors[w] for w in data["worker"]]
        ids = list(reversed(order_stage_ids(data["id"])))
        if list(self.gantt_fig.y_range.factors) != ids:
            self.gantt_fig.y_range.factors = ids
        self.gantt_src.data = data
        self.gantt_workers.text = (f"<span class=sd-muted>workers in request #{index}: </span>"
                                   f"<span data-stat=gantt-workers>{html.escape(', '.join(workers))}</span>")
        self.gantt_fig.title.text = f"request #{index}: which worker ran each stage"

    def _tick(self) -> None:
        live = self.live
        if live is None or self._finished:
            return
        if live.state == "running":
            self._pull()
            self._say(f"{live.message}: {live.elapsed:.0f} s, {self.stats.requests} measured requests so far")

    def _finish(self) -> None:
        live = self.live
        if live is None or self._finished:
            return
        self._finished = True
        self.start_button.disabled = False
        self.stop_button.disabled = True
        if live.state == "failed":
            self._say(live.message, "err")
            return
        self._pull()
        result = live.result
        if result is None:
            self._say(live.message)
            return
        s = result.summary
        self.tput.data = self.stats.throughput()
        self.stats_div.text = stats_table(s.requests, s.ok, s.errors, s.latency_ms, s.offered_rate, s.throughput,
                                          s.latency_all_ms, loop=s.loop)
        link = ""
        if live.run_id is not None:
            link = (f'<a href="runs/{live.run_id}.csv" download="stockdag-{live.run_id}.csv" class=sd-download '
                    f'data-stat=download>download the raw per-request CSV</a> &middot; '
                    f'<a href="runs/{live.run_id}.json" target="_blank">summary JSON</a> &middot; '
                    f'<span class=sd-muted>run <span data-stat=run-id>{live.run_id}</span> kept in '
                    f'{html.escape(str(self.store.folder))}</span>')
        self.summary_div.text = (f"{_CSS}<h3 style='margin:4px 0'>Summary: {html.escape(live.label())}</h3>"
                                 f"<pre style='margin:2px 0'>{html.escape(s.table())}</pre>{link}")
        self._say(live.message, "ok" if not s.errors else "muted")
        self._refresh_runs(select_new=live.run_id)

    # ------------------------------------------------------------------ comparison
    def _refresh_runs(self, select_new: str | None) -> None:
        runs = self.store.list()
        self._runs = {r["id"]: r for r in runs}
        self.compare.options = [(r["id"], f"{r['meta'].get('label', '')} ({r['id'][:8]} {r['id'][9:15]})")
                                for r in reversed(runs)]
        value = [v for v in self.compare.value if v in self._runs]
        if select_new is not None and select_new not in value:
            value.append(select_new)
        if not value and not self.compare.value:
            value = [r["id"] for r in runs[-int(config.get("webapp.compare")):]]
        if value != self.compare.value:
            self.compare.value = value  # draws through the on_change callback
        else:
            self._draw_comparison()

    def _draw_comparison(self) -> None:
        ids = [i for i in self.compare.value if i in self._runs]
        cdf = {"xs": [], "ys": [], "label": [], "color": []}
        tp = {"xs": [], "ys": [], "label": [], "color": []}
        rows = []
        for n, run_id in enumerate(ids):
            run = self._runs[run_id]
            records = self.store.records(run_id)
            label = f"{run['meta'].get('label', run_id)} [{run_id[9:15]}]"
            color = Category10_10[n % 10]
            xs, ys = latency_cdf(records)
            if xs:
                cdf["xs"].append(xs), cdf["ys"].append(ys), cdf["label"].append(label), cdf["color"].append(color)
            xs, ys = throughput_series(records)
            if xs:
                tp["xs"].append(xs), tp["ys"].append(ys), tp["label"].append(label), tp["color"].append(color)
            s = run["summary"]
            lat = s.get("latency_ms") or {}
            rows.append(
                f"<tr><td class=l><span style='color:{color}'>&#9632;</span> {html.escape(label)}</td>"
                f"<td class=l>{html.escape(s['url'])}</td><td>{s['loop']}</td>"
                f"<td>{s['rate'] if s['loop'] == 'open' else s['users']}</td><td>{s['requests']}</td>"
                f"<td>{sum(s['errors'].values())}</td><td>{s['offered_rate']:.1f}</td><td>{s['throughput']:.1f}</td>"
                + _comparison_cells(lat, int(s["ok"]))
                + f"<td><a href='runs/{run_id}.csv' download='stockdag-{run_id}.csv'>csv</a></td></tr>")
        self.cdf_src.data = cdf
        self.cmp_tput_src.data = tp
        if rows:
            head = ("<tr><th class=l>run</th><th class=l>url</th><th>loop</th><th>rate/users</th><th>requests</th>"
                    "<th>errors</th><th>offered/s</th><th>ok/s</th>"
                    + "".join(f"<th>{p} ms</th>" for p in TABLE_PERCENTILES) + "<th></th></tr>")
            self.compare_table.text = f"{_CSS}<table class=sd>{head}{''.join(rows)}</table>"
        else:
            self.compare_table.text = (f"{_CSS}<span class=sd-muted>No runs selected; finished runs are kept in "
                                       f"{html.escape(str(self.store.folder))}.</span>")
