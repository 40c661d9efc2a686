import pandas as pd
import pytest

from stockdag.lab.bench import RECORD_COLUMNS, summarize


def _records(rows):
    # index, path, intended, sent, end, status, error, latency, service_time, warmup, trace, cache
    return pd.DataFrame([(i, "/", t, t, e, 200, "", e - t, e - t, t < 1.5, None, None) for i, (t, e) in enumerate(rows)],
                        columns=list(RECORD_COLUMNS))


def _summary(records):
    return summarize(records, url="http://x", loop="open", rate=0.5, users=None, arrivals="constant",
                     duration=6.0, warmup=1.5, timeout=10)


def test_light_load_throughput_is_counted_over_the_whole_window():
    # 0.5 req/s: measured requests intended at 2, 4, 6 within the window 1.5..7.5, answered in 0.6 s
    s = _summary(_records([(0.0, 0.6), (2.0, 2.6), (4.0, 4.6), (6.0, 6.6)]))
    assert s.requests == 3 and s.offered_rate == pytest.approx(0.5)
    assert s.throughput == pytest.approx(3 / 6.0)


def test_a_backlog_drained_after_the_window_is_charged_to_the_server():
    s = _summary(_records([(2.0, 5.0), (4.0, 8.0), (6.0, 11.5)]))
    assert s.throughput == pytest.approx(3 / (11.5 - 1.5))


def test_the_mean_is_hdrhs_own_to_the_last_bit():
    import numpy as np

    from stockdag.lab.bench.summary import histogram, mean, percentiles

    rng = np.random.default_rng(0)
    edges = [0.0, 1e-6, 1e-3, 0.5, 3600.0, 7200.0]  # below, at and beyond the range's ends
    for n in (1, 2, 30, 400):
        for sigma in (0.01, 0.5, 3.0):
            h = histogram(np.concatenate([rng.lognormal(rng.normal(-2, 2), sigma, n), rng.choice(edges, 2)]))
            assert mean(h) == h.get_mean_value()
            assert percentiles(h)["mean"] == h.get_mean_value() / 1e3
    assert mean(histogram([])) == histogram([]).get_mean_value() == 0.0


def _open_loop(rate, service, n, warmup=1.5):
    """``n`` measured requests offered at ``rate`` to one server answering one at a time in ``service`` s."""
    rows, free = [], 0.0
    for i in range(int(warmup * rate) + n):
        t = i / rate
        free = max(free, t) + service
        rows.append((t, free))
    return _records(rows)


def _run(rate, service, n):
    return summarize(_open_loop(rate, service, n), url="http://x", loop="open", rate=rate, users=None,
                     arrivals="constant", duration=n / rate, warmup=1.5, timeout=60)


def test_an_open_loop_run_past_capacity_is_called_overloaded_from_its_own_numbers():
    # issue 24 item 28: 3 req/s offered, a server that answers 0.9 req/s
    s = _run(3.0, 1 / 0.9, 18)
    words = [w for w in s.warnings if w.startswith("overloaded")]
    assert len(words) == 1 and "req/s offered" in words[0] and "latency grew" in words[0]
    assert "overloaded" in s.table()


def test_a_server_that_keeps_up_is_not_called_overloaded():
    s = _run(0.5, 0.6, 30)
    assert not [w for w in s.warnings if w.startswith("overloaded")]


def test_percentiles_are_printed_only_where_the_sample_supports_them():
    from stockdag.lab.bench.summary import MIN_SAMPLES, percentile_label

    assert [percentile_label(n, 90) for n in (6, 9, 10)] == ["max of 6", "max of 9", "p90"]
    assert percentile_label(99, 99) == "max of 99" and percentile_label(100, 99) == "p99"
    assert MIN_SAMPLES["p99"] == 100 and MIN_SAMPLES["p90"] == 10
    s = _run(0.5, 0.6, 6)
    line = next(x for x in s.table().splitlines() if "ok only (ms, from intended" in x)
    assert "p90" not in line and "p99" not in line and f"max of {s.ok}" in line and s.ok < 10
