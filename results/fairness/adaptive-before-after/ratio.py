"""adaptive/dask throughput per round and side, from the demo JSONs beside this file: python ratio.py"""
import json
import pathlib
import statistics

here = pathlib.Path(__file__).parent
for side in ("old", "new"):
    r = []
    for f in sorted(here.glob(f"{side}-*.json")):
        d = json.loads(f.read_text())["distributed"]
        r.append(d["adaptive"]["throughput"] / d["dask"]["throughput"])
    print(f"{side}: adaptive/dask throughput per round {', '.join(f'{x:.2f}' for x in r)}; median {statistics.median(r):.2f}")
