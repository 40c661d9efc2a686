"""Every REPORT shows each configuration's stage time against centralized (the compute tax) and its cache hit rates."""
from __future__ import annotations

import glob
import json
import os

import pandas as pd
import pytest
from test_report import CENTRAL, DIST, write_run  # the synthetic run folder of the report tests

from stockdag.lab.bench.summary import hit_rates
from stockdag.lab.experiments import analysis, report
from stockdag.lab.experiments.sweep import summarize_run


def _slow_down(folder: str, label_part: str, factor: float, cache: dict | None) -> None:
    """Stretch every stage of one configuration's traces by ``factor`` and record its cache outcomes."""
    for path in glob.glob(os.path.join(folder, "points", f"*{label_part}*.parquet")):
        rec = pd.read_parquet(path)
        traces = []
        for t in rec["trace"]:
            stages = json.loads(t)
            traces.append(json.dumps([{**s, "end": s["start"] + factor * (s["end"] - s["start"])} for s in stages]))
        rec["trace"] = traces
        rec["cache"] = [json.dumps(c) for c in cache] if isinstance(cache, list) else json.dumps(cache)
        rec.to_parquet(path, index=False)


@pytest.fixture
def taxed_run(tmp_path):
    folder = write_run(tmp_path / "taxed", [(CENTRAL, 20, 0.3, None), (DIST, 20, 0.3, None)])
    n = 20
    _slow_down(folder, "centralized", 1.0, [{"prices": "hit", "news": "hit"}] * (n // 2) + [{"prices": "miss", "news": "miss"}] * (n // 2))
    _slow_down(folder, "distributed", 1.2, [{"prices": "hit", "news": "miss"}] * n)
    return folder


def test_the_compute_tax_is_the_stage_time_over_centralized(taxed_run):
    tax = analysis.compute_tax(analysis.stage_table(analysis.load_run(taxed_run).records)).set_index("label")
    assert tax.at["centralized", "tax"] == pytest.approx(1.0)
    assert tax.at["distributed w2 dask", "tax"] == pytest.approx(1.2)
    assert tax.at["distributed w2 dask", "stage_ms"] == pytest.approx(1.2 * tax.at["centralized", "stage_ms"])


def test_hit_rates_are_recorded_per_point_and_reported(taxed_run):
    summary = summarize_run(taxed_run, write=False).set_index("label")
    assert summary.at["centralized", "prices_hit_rate"] == pytest.approx(0.5)
    assert (summary.at["distributed w2 dask", "prices_hit_rate"], summary.at["distributed w2 dask", "news_hit_rate"]) == (1.0, 0.0)
    report.build(taxed_run)
    text = open(os.path.join(taxed_run, "REPORT.md")).read()
    row = next(line for line in text.splitlines() if line.startswith("| distributed w2 dask"))
    assert "| 1.20x |" in row and "prices 100%, news 0%" in row
    assert "prices 50%, news 50%" in next(line for line in text.splitlines() if line.startswith("| centralized"))


def test_a_run_recorded_without_cache_outcomes_says_n_a():
    assert hit_rates(pd.DataFrame({"status": [200]})) == {}
    assert report.cache_hits_text(pd.DataFrame({"label": ["x"], "load": [1.0]}), ["x"]) == ["n/a"]
