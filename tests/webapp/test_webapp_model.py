"""The web app's data model and document without a browser: form checks, live statistics, runs, the store."""
from __future__ import annotations

import json

import dask
import httpx
import pytest
from bokeh.document import Document

from stockdag.lab.bench import RECORD_COLUMNS, summarize
from stockdag.lab.bench.localserver import LocalServer
from stockdag.lab.webapp import LiveRun, LiveStats, RunStore, WebAppThread, parse_form
from stockdag.lab.webapp.app import LoadTestPage
from stockdag.lab.webapp.runs import FormError, gantt, latency_cdf, outcome, throughput_series

FORM = {"url": "http://127.0.0.1:8000", "loop": "open", "rate": "5", "users": "2", "arrivals": "constant",
        "duration": "2", "warmup": "0", "timeout": "5", "distribution": "uniform", "symbols": "",
        "start": "2012-06-01", "end": "2012-06-29", "seed": "0", "label": ""}


def form(**changes) -> dict:
    return {**FORM, **changes}


def test_parse_form_open_and_closed_loop():
    p = parse_form(form(symbols="aapl, ibm", label=" mine "))
    assert p["bench"] == {"url": "http://127.0.0.1:8000", "duration": 2.0, "warmup": 0.0, "timeout": 5.0, "seed": 0,
                          "rate": 5.0, "arrivals": "constant"}
    assert p["symbols"] == ["AAPL", "IBM"] and p["label"] == "mine"
    assert p["mix"]["start"] == "2012-06-01" and p["mix"]["distribution"] == "uniform"
    closed = parse_form(form(loop="closed", url="127.0.0.1:9000/x", rate=""))
    assert closed["bench"]["users"] == 2 and "rate" not in closed["bench"]
    assert closed["bench"]["url"] == "http://127.0.0.1:9000/x" and closed["symbols"] is None


@pytest.mark.parametrize("changes, message", [
    ({"url": ""}, "server URL: enter"),
    ({"url": "ftp://x"}, "not an http:// or https:// URL"),
    ({"url": "http://h:99999"}, "invalid port"),
    ({"rate": "0"}, "rate (requests/s) must be more than 0"),
    ({"rate": "fast"}, "rate (requests/s): 'fast' is not a number"),
    ({"rate": ""}, "rate (requests/s): enter a number"),
    ({"loop": "closed", "users": "1.5"}, "users: '1.5' is not a whole number"),
    ({"loop": "closed", "users": "0"}, "users must be at least 1"),
    ({"duration": "-1"}, "duration (s) must be more than 0"),
    ({"duration": "1e9"}, "duration (s) must be at most 3600"),
    ({"warmup": "-1"}, "warm-up (s) must be at least 0"),
    ({"timeout": "nan"}, "is not a finite number"),
    ({"start": "2012-02-30"}, "as-of start date: '2012-02-30' is not a date"),
    ({"start": "2012-07-01"}, "start 2012-07-01 is after end 2012-06-29"),
    ({"symbols": "AAPL $$$"}, "symbols: '$$$' is not a ticker symbol"),
])
def test_parse_form_rejects_bad_values_with_the_field_named(changes, message):
    with pytest.raises(FormError) as err:
        parse_form(form(**changes))
    assert message in str(err.value)


def _row(i, intended, end, status=200, error="", warmup=False, trace=None):
    return (i, "/", intended, intended, end, status, error, end - intended, end - intended, warmup, trace, None)


TRACE = json.dumps([{"id": "C1", "stage": "parse_request", "worker": "w1", "start": 100.0, "end": 100.01},
                    {"id": "C2", "stage": "fetch_prices", "worker": "w2", "start": 100.01, "end": 100.05}])


def test_live_stats_match_the_summary_and_exclude_the_warmup():
    rows = [_row(0, 0.0, 0.5, warmup=True), _row(1, 1.0, 1.1, trace=TRACE), _row(2, 1.5, 1.8),
            _row(3, 2.0, 2.0 + 5.0, status=0, error="timeout"), _row(4, 2.5, 2.6, status=503, error="http_503"),
            _row(5, 3.0, 3.4, trace=TRACE)]
    stats = LiveStats(warmup=1.0)
    streamed = stats.add(rows[:3])
    assert streamed["index"] == [0, 1, 2] and streamed["warmup"] == [True, False, False]
    stats.add(rows[3:])
    assert (stats.seen, stats.requests, stats.ok) == (6, 5, 3)
    assert stats.errors == {"timeout": 1, "http_503": 1}
    import pandas as pd

    records = pd.DataFrame(rows, columns=list(RECORD_COLUMNS))
    summary = summarize(records, url="u", loop="open", rate=2.0, users=None, arrivals="constant", duration=2.5,
                        warmup=1.0, timeout=5.0)
    assert stats.percentiles() == summary.latency_ms
    assert (summary.requests, summary.ok, summary.errors) == (stats.requests, stats.ok, dict(stats.errors))
    tp = stats.throughput()
    assert tp["t"][:4] == [0.5, 1.5, 2.5, 3.5]
    assert tp["offered"][:4] == [1, 2, 2, 1]  # by intended send time, warm-up included
    assert tp["achieved"][:4] == [0, 2, 0, 1]  # ok responses by end time, measured only
    means = stats.stage_means()
    assert means["id"] == ["C1", "C2"] and means["n"] == [2, 2]
    assert means["ms"] == pytest.approx([10.0, 40.0])
    assert stats.last_trace_index == 5
    h = stats.histogram()
    assert sum(h["count"]) == 3


def test_gantt_and_outcome_and_comparison_series():
    g = gantt(TRACE)
    assert g["id"] == ["C1", "C2"] and g["worker"] == ["w1", "w2"]
    assert g["left"] == pytest.approx([0.0, 10.0]) and g["right"] == pytest.approx([10.0, 50.0])
    assert gantt(None)["id"] == [] and gantt("")["id"] == []
    assert outcome(200, "") == ("200", "#2ca02c")
    assert outcome(503, "http_503")[0] == "503" and outcome(0, "connect")[0] == "connect"
    import pandas as pd

    records = pd.DataFrame([_row(i, i * 0.1, i * 0.1 + 0.05 * (i + 1)) for i in range(30)], columns=list(RECORD_COLUMNS))
    xs, ys = latency_cdf(records, points=10)
    assert len(xs) <= 10 and xs == sorted(xs) and ys[-1] == 100.0
    t, per_s = throughput_series(records)
    assert sum(per_s) == 30


def test_live_run_against_a_local_server_is_stored(tmp_path):
    store = RunStore(tmp_path)
    with LocalServer(delay=0.01, fail_every=4) as server:
        run = LiveRun(parse_form(form(url=server.url, rate="20", duration="1", warmup="0.2", label="local")),
                      store).start()
        run.join(30)
    assert run.state == "done", run.message
    s = run.result.summary
    assert s.requests == 20 and s.ok == 15 and s.errors == {"http_500": 5}  # fail_every counts warm-up requests too
    assert s.extra["label"] == "local" and run.target.stockdag is False
    listed = store.list()
    assert [r["id"] for r in listed] == [run.run_id]
    assert listed[0]["summary"]["latency_ms"] == s.latency_ms and listed[0]["meta"]["label"] == "local"
    records = store.records(run.run_id)
    assert len(records) == len(run.result.records) == 24
    assert records["warmup"].sum() == 4 and set(records.columns) == set(RECORD_COLUMNS)


def test_stop_records_the_requests_in_flight_as_cancelled(tmp_path):
    # every 5th request the server sees hangs 30 s (the timeout is 60 s): once 4 have returned one is in flight,
    # so Stop must record it as cancelled with the time it had waited, not drop it
    with LocalServer(delay=0.01, hang_every=5, hang_for=30.0) as server:
        run = LiveRun(parse_form(form(url=server.url, loop="closed", users="2", duration="60", timeout="60")),
                      RunStore(tmp_path))
        run.start()
        while len(run.rows) < 4:
            run.join(0.05)
        run.stop()
        run.join(30)
    rec = run.result.records
    cancelled = rec[rec["error"] == "cancelled"]
    assert len(cancelled) >= 1 and (cancelled["end"] >= cancelled["sent"]).all()
    assert run.result.summary.errors["cancelled"] == len(cancelled)
    assert "in flight at the stop (recorded as cancelled)" in run.message


def test_live_run_stops_early_and_fails_clearly(tmp_path):
    with LocalServer(delay=0.05) as server:
        run = LiveRun(parse_form(form(url=server.url, loop="closed", users="2", duration="60")), RunStore(tmp_path))
        run.start()
        while len(run.rows) < 4:
            run.join(0.05)
        run.stop()
        run.join(30)
    assert run.state == "stopped" and "stopped_after" in run.result.summary.extra
    assert run.result.summary.requests == len(run.rows) >= 4 and run.run_id is not None

    with LocalServer() as server:
        closed_port = server.port
    failed = LiveRun(parse_form(form(url=f"http://127.0.0.1:{closed_port}")), RunStore(tmp_path)).start()
    failed.join(30)
    assert failed.state == "failed" and failed.result is None
    assert failed.message.startswith(f"cannot reach http://127.0.0.1:{closed_port}")


def test_page_document_runs_and_compares_without_a_browser(tmp_path):
    """The Bokeh document driven from Python: Start, the live pull, the end callback, the comparison."""
    doc = Document()
    page = LoadTestPage(doc, RunStore(tmp_path), "http://127.0.0.1:9")
    with LocalServer(delay=0.005) as server:
        page.url.value = server.url
        page.rate.value, page.duration.value, page.warmup.value = "0", "1", "0"
        page._start()
        assert "rate (requests/s) must be more than 0" in page.message.text and page.live is None
        page.rate.value = "10"
        page._start()
        assert page.stop_button.disabled is False and page.start_button.disabled is True
        page.live.join(30)
    page._finish()  # what the run's add_next_tick_callback does on a served document
    s = page.live.result.summary
    assert s.requests == 10 and s.ok == 10
    assert f'data-stat="requests">{s.requests}<' in page.stats_div.text
    assert f'data-stat="p50">{s.latency_ms["p50"]:.2f}<' in page.stats_div.text
    assert f"runs/{page.live.run_id}.csv" in page.summary_div.text
    assert len(page.points.data["t"]) == 10 and page.start_button.disabled is False
    assert page.compare.value == [page.live.run_id] and len(page.cdf_src.data["xs"]) == 1

    later = LoadTestPage(Document(), RunStore(tmp_path))  # a reload: a new session sees the stored run
    assert later.compare.value == [page.live.run_id] and page.live.run_id in later.compare_table.text


def test_run_files_are_served_and_ids_checked(tmp_path):
    with LocalServer() as server:
        run = LiveRun(parse_form(form(url=server.url, rate="10", duration="0.5")), RunStore(tmp_path)).start()
        run.join(30)
    with dask.config.set({"stockdag.webapp.update_interval": 0.25}):
        with WebAppThread(store=str(tmp_path)) as app:
            csv = httpx.get(f"{app.url}runs/{run.run_id}.csv")
            assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
            assert csv.text.splitlines()[0].split(",") == list(RECORD_COLUMNS)
            assert httpx.get(f"{app.url}runs/{run.run_id}.json").json()["id"] == run.run_id
            assert httpx.get(f"{app.url}runs/20990101-000000-abcdef.csv").status_code == 404
            assert httpx.get(f"{app.url}runs/..%2F..%2Fetc.csv").status_code == 404
            assert httpx.get(app.url).status_code == 200


def test_closed_loop_shows_requests_sent_not_an_offered_rate_and_every_request_counts(tmp_path):
    doc = Document()
    page = LoadTestPage(doc, RunStore(tmp_path), "http://127.0.0.1:9")
    assert page.tput_fig.legend.items[0].label.value == "offered"
    # every 3rd request hangs past the 0.3 s timeout (the page's probe of the URL takes the first): the
    # all-requests column must show them
    with LocalServer(delay=0.005, hang_every=3, hang_for=2.0) as server:
        page.url.value = server.url
        page.loop.active = 1  # closed loop
        page.users.value, page.duration.value, page.warmup.value, page.timeout.value = "2", "2", "0", "0.3"
        page._start()
        page.live.join(30)
    page._finish()
    s = page.live.result.summary
    assert page.tput_fig.legend.items[0].label.value == "sent"  # closed loop offers no rate
    assert "sent (closed loop offers no rate)" in page.tput_fig.title.text
    assert 'data-stat="sent">' in page.stats_div.text and 'data-stat="offered"' not in page.stats_div.text
    assert s.errors.get("timeout", 0) > 0
    assert f'data-stat="all-max">{s.latency_all_ms["max"]:.2f}<' in page.stats_div.text
    assert s.latency_all_ms["max"] >= 300.0 > s.latency_ms["max"]  # the timeouts are in the all-requests max only
