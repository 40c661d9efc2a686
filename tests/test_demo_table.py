"""The demo's table says which way a ratio goes and how many requests were really in flight (issue 16 item 15)."""
from stockdag.lab.demo import Comparison


def _comparison(requests=4, in_flight=16):
    return Comparison(requests, 2, in_flight, "refit", centralized_latency=[1.0, 1.0, 1.0], centralized_throughput=1.0,
                      strategies={"dask": {"latency": [1.16, 1.16], "throughput": 1.5},
                                  "heft": {"latency": [0.8, 0.8], "throughput": 2.0}})


def test_latency_ratios_say_slower_or_faster():
    table = _comparison().table()
    dask_row = next(line for line in table.splitlines() if line.startswith("distributed dask"))
    heft_row = next(line for line in table.splitlines() if line.startswith("distributed heft"))
    assert "1.16x slower" in dask_row and "1.50x" in dask_row
    assert "1.25x faster" in heft_row and "1.45x faster" in heft_row  # 1.16 / 0.8 against dask


def test_in_flight_label_is_capped_by_the_requests():
    assert "4 in flight" in _comparison(requests=4, in_flight=16).table()
    assert "16 in flight" in _comparison(requests=20, in_flight=16).table()
