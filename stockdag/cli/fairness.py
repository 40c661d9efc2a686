"""``stockdag fairness``: where the baseline runs and what a worker costs, or a before/after summary."""
from __future__ import annotations

import datetime as dt
import json
import os
import sys

from ..errors import InvalidRequest
from ..pipeline.request import PROFILES
from .options import non_negative_int, positive_int


def add_parser(sub) -> None:
    p = sub.add_parser("fairness", help="the same requests' stage time in four placements (baseline in or out of the "
                                        "scheduler's process, worker profiler on or off), interleaved",
                       description="Run each request in process, in a process of its own, and as one task on a worker "
                                   "with Dask's profiler on and off, in a seeded shuffled order; print each placement's "
                                   "stage time and its ratio to the own-process baseline. With --before-after DIR, "
                                   "summarize instead the demo runs that scripts/before-after.sh left in DIR.")
    p.add_argument("--requests", type=positive_int, default=12, help="measured requests (default 12)")
    p.add_argument("--profile", default="pretrained", choices=PROFILES, help="workload profile (default pretrained)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="request mix and placement order seed")
    p.add_argument("--out", help="folder for the JSON result (file name: the UTC time and the profile)")
    p.add_argument("--before-after", metavar="DIR", help="instead of probing: write DIR/SUMMARY.md from the demo "
                   "runs scripts/before-after.sh left in DIR, and print it")


def run(args) -> int:
    from ..lab import fairness

    if args.before_after:
        try:
            text = fairness.before_after(args.before_after)
        except FileNotFoundError as exc:
            raise InvalidRequest(str(exc)) from None
        with open(os.path.join(args.before_after, "SUMMARY.md"), "w") as f:
            f.write(text)
        print(text)
        return 0
    result = fairness.probe(args.requests, args.profile, args.seed,
                            progress=lambda i, n: print(f"  request {i}/{n} (warm-up included)", file=sys.stderr))
    print(fairness.format_table(result))
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        path = os.path.join(args.out, f"{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}-{args.profile}.json")
        with open(path, "w") as f:
            json.dump(result, f, indent=1, default=str)
        print(f"wrote {path}")
    return 0
