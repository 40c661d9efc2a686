"""The web app in a real browser: Debian's chromium driven by playwright.

Never ``playwright install`` (it downloads a browser): ``make test`` runs
``scripts/ensure-chromium.sh`` first, which installs Debian's chromium with
apt-get when /usr/bin/chromium is missing. A missing browser fails these
tests; it does not skip them.

Bokeh renders its widgets inside open shadow roots; Playwright's CSS
selectors pierce them, so ``.sd-url input`` finds the URL field.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import pandas as pd
import pytest

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError as exc:  # the hint, then the failure: CI must not skip these
    raise ImportError("the browser tests need playwright: pip install -e '.[browser]' "
                      "(the browser itself comes from scripts/ensure-chromium.sh, never `playwright install`)") from exc

from stockdag.lab.bench.summary import histogram, percentiles
from stockdag.pipeline import stage_table
from stockdag.pipeline.spec import DEFAULT

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync"]
# the README's copy is refreshed only on request (STOCKDAG_UPDATE_SCREENSHOT=1), so a test run leaves the tree clean
README_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "guides" / "webapp.png"
STAGES = {s.id for s in stage_table(DEFAULT)}  # the default pipeline's, from its owner


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-chromium.sh (apt-get install chromium)", pytrace=False)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, webapp):
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    pg.goto(webapp.url)
    expect(pg.locator(".sd-url input")).to_be_visible()
    yield pg
    context.close()


def fill(page, css_class: str, value: str) -> None:
    box = page.locator(f".{css_class} input")
    box.fill(value)
    box.press("Tab")  # commits the value (a change event) to the Bokeh document


def stat(page, name: str) -> str:
    return page.locator(f"[data-stat={name}]").first.inner_text().strip()


def save_screenshot(page, path: Path) -> Path:
    """A full-page PNG, reduced to a palette so the README's copy stays small."""
    from PIL import Image

    png = page.screenshot(full_page=True)
    img = Image.open(io.BytesIO(png)).convert("RGB")
    img = img.resize((img.width * 3 // 4, img.height * 3 // 4), Image.LANCZOS)
    path.parent.mkdir(exist_ok=True)
    img.quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    return path


def test_bad_values_and_unreachable_url_get_clear_messages(page):
    fill(page, "sd-rate", "-2")
    page.locator(".sd-start button").click()
    expect(page.locator("[data-stat=message]")).to_contain_text("rate (requests/s) must be more than 0")
    fill(page, "sd-rate", "2")
    fill(page, "sd-start-date", "2012-02-30")
    page.locator(".sd-start button").click()
    expect(page.locator("[data-stat=message]")).to_contain_text("is not a date")
    fill(page, "sd-start-date", "2012-06-01")
    fill(page, "sd-url", "http://127.0.0.1:9")  # discard port: nothing listens
    expect(page.locator(".sd-target")).to_contain_text("cannot reach http://127.0.0.1:9")
    page.locator(".sd-start button").click()
    expect(page.locator("[data-stat=message]")).to_contain_text("cannot reach http://127.0.0.1:9")
    expect(page.locator(".sd-start button")).to_be_enabled()


def test_run_against_stockdag_matches_the_downloaded_csv(page, stockdag_server, tmp_path):
    fill(page, "sd-url", stockdag_server)
    expect(page.locator(".sd-target")).to_contain_text("stockdag centralized server")
    fill(page, "sd-label", "centralized")
    fill(page, "sd-rate", "1.5")
    fill(page, "sd-duration", "4")
    fill(page, "sd-warmup", "0.5")
    fill(page, "sd-symbols", "AAPL IBM MSFT")
    fill(page, "sd-start-date", "2012-05-01")
    fill(page, "sd-end-date", "2012-06-29")
    page.locator(".sd-start button").click()
    expect(page.locator(".sd-stop button")).to_be_enabled()
    download = page.locator("[data-stat=download]")
    expect(download).to_be_visible(timeout=60_000)
    expect(page.locator(".sd-start button")).to_be_enabled()

    requests = int(stat(page, "requests"))
    p50 = float(stat(page, "p50"))
    with page.expect_download() as info:
        download.click()
    records = pd.read_csv(info.value.path(), keep_default_na=False)
    measured = records[~records["warmup"]]
    ok = measured[measured["error"] == ""]
    assert requests == len(measured) > 0
    assert int(stat(page, "ok")) == len(ok)
    assert p50 == pytest.approx(percentiles(histogram(ok["latency"]))["p50"], abs=0.006)  # shown to 0.01 ms
    assert len(records) > len(measured)  # the warm-up's requests are in the CSV, flagged
    assert set(pd.read_json(io.StringIO(ok["trace"].iloc[0]))["id"]) == STAGES
    # the stage charts had traces to draw
    expect(page.locator("text=Stage charts fill in")).to_be_hidden()
    shot = README_SCREENSHOT if os.environ.get("STOCKDAG_UPDATE_SCREENSHOT") == "1" else tmp_path / "webapp.png"
    assert save_screenshot(page, shot).stat().st_size > 10_000

    run_id = stat(page, "run-id")
    page.reload()  # the comparison view is kept on the server
    expect(page.locator(".sd-compare-table")).to_contain_text("centralized")
    expect(page.locator(f".sd-compare-table a[href='runs/{run_id}.csv']")).to_have_count(1)


@pytest.fixture(scope="module")
def deep_server():
    """A centralized `stockdag serve --pipeline experiments/pipelines/deep.yaml` with small model windows."""
    import dask

    from stockdag.pipeline.spec import load_pipeline
    from stockdag.serve import ServerThread, create_app

    small = {"stockdag.models.window": 120, "stockdag.models.error_days": 10, "stockdag.data.min_history": 150,
             "stockdag.data.history_days": 200, "stockdag.data.news_days": 320}  # the conftest's SMALL
    deep = load_pipeline(Path(__file__).resolve().parents[2] / "experiments" / "pipelines" / "deep.yaml")
    with dask.config.set({**small, "stockdag.pipeline.spec": deep.to_dict()}):
        app = create_app("centralized")
    with ServerThread(app) as server:
        yield server.url, deep


STAGE_AXIS_JS = """title => {
    const doc = Bokeh.documents[0];
    const fig = [...doc.all_models].find(m => m.title && m.title.text && m.title.text.startsWith(title));
    return fig.y_range.factors;
}"""


def test_stage_charts_show_the_extra_stages_of_a_deep_pipeline_server(page, deep_server):
    url, deep = deep_server
    fill(page, "sd-url", url)
    expect(page.locator(".sd-target")).to_contain_text("stockdag centralized server")
    fill(page, "sd-label", "deep")
    fill(page, "sd-rate", "1")
    fill(page, "sd-duration", "3")
    fill(page, "sd-warmup", "0.5")
    fill(page, "sd-symbols", "AAPL")
    fill(page, "sd-start-date", "2012-05-01")
    fill(page, "sd-end-date", "2012-06-29")
    page.locator(".sd-start button").click()
    expect(page.locator("[data-stat=download]")).to_be_visible(timeout=60_000)
    expect(page.locator("text=Stage charts fill in")).to_be_hidden()
    ids = [s.id for s in stage_table(deep)]
    assert {"C13", "C14", "C15", "C16"} <= set(ids)
    # both stage charts' axes, as the browser holds them: every stage of the server's pipeline, in table order
    assert list(reversed(page.evaluate(STAGE_AXIS_JS, "mean time per stage"))) == ids
    assert set(page.evaluate(STAGE_AXIS_JS, "request #")) == set(ids)


def test_distributed_server_gantt_shows_both_workers(page, distributed_server, tmp_path):
    fill(page, "sd-url", distributed_server)
    expect(page.locator(".sd-target")).to_contain_text("stockdag distributed server")
    fill(page, "sd-label", "distributed round-robin")
    fill(page, "sd-rate", "1")
    fill(page, "sd-duration", "3")
    fill(page, "sd-warmup", "0")
    fill(page, "sd-symbols", "AAPL IBM")
    fill(page, "sd-start-date", "2012-05-01")
    fill(page, "sd-end-date", "2012-06-29")
    page.locator(".sd-start button").click()
    download = page.locator("[data-stat=download]")
    expect(download).to_be_visible(timeout=120_000)
    shown = page.locator("[data-stat=gantt-workers]")
    expect(shown).to_be_visible()
    workers = [w.strip() for w in shown.inner_text().split(",")]
    assert len(workers) == 2  # round-robin spread the request's stages over both workers
    # the Gantt is drawn from the request's own trace: the CSV's traces name the same two workers
    with page.expect_download() as info:
        download.click()
    records = pd.read_csv(info.value.path(), keep_default_na=False)
    ok = records[records["error"] == ""]
    assert len(ok) > 0
    ran_on = set().union(*(set(pd.read_json(io.StringIO(t))["worker"].astype(str)) for t in ok["trace"]))
    assert set(workers) == ran_on
