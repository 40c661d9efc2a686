"""The form's choices and defaults, and the live table's tail: no run, no browser."""
from __future__ import annotations

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
