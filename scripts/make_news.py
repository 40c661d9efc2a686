"""Generate the bundled, SYNTHETIC headline set (stockdag/data/news.csv.gz).

Run once; the output is committed. Seeded, so a re-run gives the same file.
Each trading day of each bundled symbol gets 0-4 headlines whose tone follows
that day's real adjusted return plus noise. A headline of day t only ever
reflects day t's move, so using it as a feature at t leaks nothing from t+1.
These are not real news.

    python scripts/make_news.py
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
from bokeh_sampledata.stocks import data

NAMES = {"AAPL": "Apple", "GOOG": "Google", "IBM": "IBM", "MSFT": "Microsoft", "FB": "Facebook"}
POSITIVE = [
    "{n} shares rally as investors cheer strong demand",
    "{n} beats expectations, analysts upgrade outlook",
    "{n} stock surges on upbeat growth forecast",
    "Investors welcome {n} gains after a great session",
    "{n} wins praise for impressive new products",
    "{n} climbs as confidence improves",
]
NEGATIVE = [
    "{n} shares slump amid weak demand fears",
    "{n} misses estimates, analysts cut targets",
    "{n} stock falls sharply on disappointing guidance",
    "Investors worried as {n} losses deepen",
    "{n} faces lawsuit and regulatory concerns",
    "{n} drops as outlook turns bleak",
]
NEUTRAL = [
    "{n} to hold annual shareholder meeting",
    "{n} announces schedule for quarterly report",
    "What to watch in {n} stock this week",
    "{n} shares trade in line with the market",
    "{n} names new vice president of operations",
]


def main(out: str) -> None:
    rng = np.random.default_rng(20191023)
    rows = []
    for symbol, group in data.groupby("ticker", sort=True):
        group = group.sort_values("date")
        ret = group["adj_close"].pct_change().fillna(0.0).to_numpy()
        vol = pd.Series(ret).rolling(20, min_periods=5).std().bfill().fillna(0.01).to_numpy()
        name = NAMES.get(symbol, symbol)
        for date, r, s in zip(group["date"], ret, vol):
            z = r / max(s, 1e-6)
            count = rng.poisson(0.8 + 0.6 * min(abs(z), 3.0))
            for _ in range(min(count, 4)):
                tone = z + rng.normal(0.0, 1.0)
                pool = POSITIVE if tone > 0.7 else NEGATIVE if tone < -0.7 else NEUTRAL
                rows.append((date.date().isoformat(), symbol, pool[rng.integers(len(pool))].format(n=name)))
    frame = pd.DataFrame(rows, columns=["date", "symbol", "headline"])
    frame.to_csv(out, index=False, compression={"method": "gzip", "mtime": 0})
    print(f"wrote {len(frame)} synthetic headlines to {out}")


if __name__ == "__main__":
    main(os.path.join(os.path.dirname(__file__), "..", "stockdag", "data", "news.csv.gz"))
