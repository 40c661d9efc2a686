"""stockdag.config: a snapshot is a copy, so settings taken inside a dask.config.set block outlive it."""
import dask

from stockdag import config


def test_a_snapshot_keeps_the_values_of_the_block_it_was_taken_in():
    with dask.config.set({"stockdag.data.source": "csv", "stockdag.pipeline.spec": {"name": "x"}}):
        snap = config.snapshot()
    assert snap["data"]["source"] == "csv" and snap["pipeline"]["spec"] == {"name": "x"}
    assert config.get("data.source") != "csv" and config.get("pipeline.spec") is None
