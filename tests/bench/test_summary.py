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
