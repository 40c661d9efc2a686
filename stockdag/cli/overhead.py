"""``stockdag overhead``: where a distributed request's time goes, against centralized, one interleaved run."""
from __future__ import annotations

import json
import sys

from ..pipeline.granularity import GRANULARITIES
from ..pipeline.request import PROFILES
from .common import Command, arg
from .options import non_negative_int, positive_int, strategies

#: stream-interval presets (:data:`stockdag.run.batching.PRESETS` owns them; checked after parsing, since that
#: module imports distributed and ``--help`` must stay fast)
_BATCHING_HELP = "stream intervals: dask (Dask's own 5/2/2/10 ms) and/or fast (1 ms each)"


COMMAND = Command(
    "overhead", help="split a distributed request's time (submit, gaps, return) against centralized",
    description="Run the centralized executor and each distributed variant (granularity x stream "
                "intervals x strategy) on one LocalCluster in interleaved blocks, one request in flight, "
                "then throughput rounds; print the per-request and per-task overhead, Dask's floor and "
                "the best schedule of the run's own stage costs. See the granularity guide.",
    arguments=(
        arg("--profiles", nargs="+", default=["pretrained", "refit"], choices=PROFILES, help="profiles, interleaved (default both)"),
        arg("--workers", type=positive_int, default=1, help="LocalCluster worker processes, one thread each (default 1: test case 2)"),
        arg("--requests", type=positive_int, default=16, help="measured requests per profile, one in flight (default 16)"),
        arg("--batch", type=positive_int, default=8, help="requests in flight in each throughput round (default 8)"),
        arg("--rounds", type=non_negative_int, default=2, help="throughput rounds (default 2)"),
        arg("--granularities", nargs="+", default=list(GRANULARITIES), choices=GRANULARITIES,
            help="stages per Dask task, each a variant (default: every granularity)"),
        arg("--batching", nargs="+", default=["dask", "fast"], help=_BATCHING_HELP),
        arg("--strategies", type=strategies, default=("dask",),
            help="comma-separated placement strategies, or 'all' (default dask)"),
        arg("--submit", nargs="+", default=["task"], choices=["task", "graph"],
            help="how a one-task (request granularity) request is submitted: task (Client.submit, the executor's "
                 "way) and/or graph (its delayed graph through Client.compute)"),
        arg("--block", type=positive_int, default=4,
            help="requests each variant runs back to back, after one uncounted lead-in (default 4; 1: alternate "
                 "variants request by request, which hides the waits of a closed loop)"),
        arg("--seed", type=non_negative_int, default=0, help="seed of the request mix and the variant order"),
    ), json="print the summary and raw splits as JSON")
add_parser = COMMAND.add


def check(parser, args) -> None:
    from ..run.batching import PRESETS

    unknown = [b for b in args.batching if b not in PRESETS]
    if unknown:
        parser.error(f"--batching: unknown preset {unknown[0]!r} (choose from {', '.join(PRESETS)})")


def run(args) -> int:
    from ..lab.overhead import measure

    m = measure(tuple(args.profiles), workers=args.workers, requests=args.requests, batch=args.batch, rounds=args.rounds,
                granularities=tuple(args.granularities), batchings=tuple(args.batching), strategies=tuple(args.strategies),
                submits=tuple(args.submit), seed=args.seed, block=args.block,
                progress=None if args.json else lambda p, i: print(f"  {p} request {i + 1}/{args.requests}", file=sys.stderr))
    identical = {p: len({tuple(v) for v in by.values()}) == 1 for p, by in m.predictions.items()}
    if args.json:
        print(json.dumps({"summary": m.summary(), "floor": m.floors(), "identical_predictions": identical, "machine": m.machine,
                          "command": m.commands, "latency": m.latency, "throughput": m.throughput}, indent=2))
    else:
        print(f"{args.workers} worker(s), {args.requests} requests per profile, one in flight, interleaved; "
              f"machine: {m.machine['cores']} cores; predictions identical across variants: {identical}")
        print(m.table())
    return 0
