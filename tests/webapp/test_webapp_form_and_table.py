"""The form's choices and defaults, and the live table's tail: no run, no browser."""
from __future__ import annotations

import dask
import pytest
from bokeh.document import Document

from stockdag.lab.bench import ARRIVALS, DISTRIBUTIONS, MIN_SAMPLES
from stockdag.lab.webapp.app import LoadTestPage, stats_table
from stockdag.lab.webapp.form import FormError, parse_form
from stockdag.lab.webapp.store import RunStore

FORM = {"url": "http://127.0.0.1:8000", "loop": "open", "rate": "1", "duration": "2", "timeout": "5",
        "start": "2012-06-01", "end": "2012-06-29"}
PCT = {"p50": 10.0, "p90": 20.0, "p99": 30.0, "max": 40.0}


def test_the_form_offers_the_load_generators_choices_and_a_rate_a_slow_machine_keeps_up_with(tmp_path):
    page = LoadTestPage(Document(), RunStore(tmp_path), "http://127.0.0.1:9")
    assert page.arrivals.options == list(ARRIVALS)
    assert page.distribution.options == list(DISTRIBUTIONS)
    assert float(page.rate.value) == 0.5


@pytest.mark.parametrize("key, choices", [("arrivals", ARRIVALS), ("distribution", DISTRIBUTIONS)])
def test_the_form_accepts_every_choice_of_the_load_generator_and_names_them_on_a_bad_one(key, choices):
    for choice in choices:
        parse_form({**FORM, key: choice})
    with pytest.raises(FormError, match=" or ".join(choices)):
        parse_form({**FORM, key: "bursty"})


def test_the_live_table_gives_the_max_of_n_instead_of_a_p99_below_the_reports_minimum():
    few = MIN_SAMPLES["p99"] - 1
    table = stats_table(few, few, {}, PCT, None, None, pct_all=PCT)
    assert "<th>p99 ms</th>" not in table and "<th>all p99 ms</th>" not in table
    assert f"<th>max of {few} ms</th>" in table and f"<th>all max of {few} ms</th>" in table
    assert 'data-stat="max">40.00<' in table and 'data-stat="p50">10.00<' in table

    enough = MIN_SAMPLES["p99"]
    table = stats_table(enough, enough, {}, PCT, None, None, pct_all=PCT)
    assert "<th>p99 ms</th>" in table and "<th>max ms</th>" in table and 'data-stat="p99">30.00<' in table
    # the successful requests may be too few while all requests are enough
    table = stats_table(enough, few, {"timeout": 1}, PCT, None, None, pct_all=PCT)
    assert f"<th>max of {few} ms</th>" in table and "<th>all p99 ms</th>" in table


def test_the_empty_table_before_a_run_shows_every_column():
    table = stats_table(0, 0, {}, {}, None, None)
    assert "<th>p99 ms</th>" in table and "<th>max ms</th>" in table


def _stored_run(store: RunStore, n: int) -> str:
    import pandas as pd

    from stockdag.lab.bench import RECORD_COLUMNS, BenchResult, summarize

    rows = [(i, "/", 0.1 * i, 0.1 * i, 0.1 * i + 0.01 * (i + 1), 200, "", 0.01 * (i + 1), 0.01 * (i + 1), False, None, None)
            for i in range(n)]
    records = pd.DataFrame(rows, columns=list(RECORD_COLUMNS))
    summary = summarize(records, url="http://127.0.0.1:9", loop="open", rate=10.0, users=None, arrivals="constant",
                        duration=0.1 * n, warmup=0.0, timeout=5.0)
    return store.save(BenchResult(records, summary), {"label": f"n{n}"})


def test_the_comparison_table_follows_the_live_tables_rule_for_the_tail(tmp_path):
    # it printed a "p99" of 24 requests (their max) while the live table said "max of 24"
    store = RunStore(tmp_path)
    _stored_run(store, 24), _stored_run(store, MIN_SAMPLES["p99"])
    with dask.config.set({"stockdag.webapp.compare": 2}):
        page = LoadTestPage(Document(), store, "http://127.0.0.1:9")
    rows = {r.split("</td>")[0]: r for r in page.compare_table.text.split("<tr>")[2:]}
    row_few = next(r for k, r in rows.items() if "n24 [" in k)
    row_enough = next(r for k, r in rows.items() if f"n{MIN_SAMPLES['p99']} [" in k)
    assert '<td data-stat="p99" title="p99 needs 100 requests; this run has 24 ok">&ndash;</td>' in row_few
    assert "(max of 24)" in row_few and 'data-stat="p50">' in row_few
    assert 'data-stat="p99">&ndash;' not in row_enough and "max of" not in row_enough
    # the same rule as the live table of the same numbers
    live = stats_table(24, 24, {}, PCT, None, None)
    assert "<th>p99 ms</th>" not in live and "<th>max of 24 ms</th>" in live


@pytest.mark.parametrize("dashboard, link", [
    ("http://127.0.0.1:8787/status", True), ("https://example.test/status", True),
    ("javascript:alert(document.cookie)", False), (" JavaScript:alert(1)", False), ("data:text/html,<b>x</b>", False),
    ("//evil.test/x", False), ("http://[::1/status", False), (42, False), (["http://a.test/"], False), ({}, False),
])
def test_the_probed_dashboard_becomes_a_link_only_when_it_is_an_http_url(tmp_path, dashboard, link):
    # the probed server's /health chooses this value: a javascript: URL went into the href, a number broke the callback
    from stockdag.lab.webapp.probe import Target

    page = LoadTestPage(Document(), RunStore(tmp_path), "http://127.0.0.1:9")
    health = {"service": "stockdag", "mode": "distributed", "workers": 2, "strategy": "adaptive", "profile": "refit",
              "dashboard": dashboard}
    page._show_target(page._probe_seq, Target("http://127.0.0.1:9", True, "HTTP 200", health, ["AAPL"]))
    text = page.target_info.text
    assert "stockdag distributed server" in text
    assert ("data-stat=dashboard" in text) is link and ("placement page" in text) is link
    assert "javascript" not in text.lower() and "data:text" not in text
