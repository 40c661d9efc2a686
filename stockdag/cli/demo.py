"""``stockdag demo``: the same requests centralized and distributed, latency and throughput compared."""
from __future__ import annotations

import json

from ..pipeline.granularity import GRANULARITY_CHOICES
from ..pipeline.request import PROFILES
from .common import add_pipeline_option, reach_scheduler, use_pipeline
from .options import non_negative_int, positive_int, scheduler_address, strategies


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="run the same requests centralized and distributed and compare latency/throughput",
                       description="Start a LocalCluster, run N distinct requests both ways (warm-up excluded), print latency and throughput with their ratio, and the stage trace of one request.")
    p.add_argument("--requests", type=positive_int, default=16, help="measured requests per phase (default 16)")
    p.add_argument("--workers", type=positive_int, default=None, help="LocalCluster worker processes, one thread each (default 2); not with --scheduler")
    p.add_argument("--in-flight", type=positive_int, default=16, help="concurrent requests in the throughput phase (default 16)")
    p.add_argument("--profile", choices=PROFILES, default=None, help="workload profile (default: stockdag.profile)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the request mix")
    p.add_argument("--scheduler", type=scheduler_address, default=None, help="use a running Dask scheduler instead of a LocalCluster; stockdag installs its placement plugin, 1 ms stream "
                        "intervals and worker log filter there, for every client of that cluster; the demo switches strategies "
                        "there, so DASK_STOCKDAG__CONFIGURE_CLUSTER=false (install nothing) refuses it in one line")
    p.add_argument("--strategies", type=strategies, default=None,
                   help="comma-separated placement strategies compared on the same cluster, e.g. dask,heft,round-robin; 'all' for every one "
                        "(default: stockdag.placement.strategy, the strategy predict and serve use)")
    p.add_argument("--granularity", choices=GRANULARITY_CHOICES, default=None,
                   help="stages per Dask task: stage (one task a stage), branch (each chain fused), request (one task), auto (request on one worker thread, else branch), "
                        "load (auto, and request while as many requests are in flight as the cluster has threads: the throughput phase's "
                        "--in-flight requests then run as one task each) (default: stockdag.pipeline.granularity)")
    add_pipeline_option(p)
    p.add_argument("--json", action="store_true", help="print the measurements as JSON")


def check(parser, args) -> None:
    if args.workers is not None and args.scheduler is not None:
        parser.error("--workers sizes a LocalCluster started here; it cannot be combined with --scheduler")


def run(args) -> int:
    from .. import config
    from ..lab.demo import compare
    from ..run import batching

    use_pipeline(args)
    client = None
    if args.scheduler:
        from distributed import Client

        from ..deploy.service import security_for

        reach_scheduler(args.scheduler)
        client = Client(args.scheduler, security=security_for(args.scheduler))
    try:
        cmp = compare(args.requests, args.workers or 2, args.in_flight, args.profile, seed=args.seed,
                      client=client, show_progress=not args.json, strategies=tuple(args.strategies or (config.get("placement.strategy"),)),
                      granularity=args.granularity)
    finally:
        if client is not None:
            client.close()
    if args.json:
        print(json.dumps({
            "requests": cmp.requests, "workers": cmp.workers, "in_flight": cmp.in_flight, "profile": cmp.profile,
            "centralized_latency": cmp.centralized_latency, "centralized_throughput": cmp.centralized_throughput,
            "distributed": {name: {"latency": r["latency"], "throughput": r["throughput"]} for name, r in cmp.strategies.items()},
            "latency_ratio": cmp.latency_ratio, "throughput_ratio": cmp.throughput_ratio, "machine": cmp.machine,
            "granularity": cmp.granularity, "built": cmp.built, "overhead_per_request": cmp.overhead_per_request,
            "floor": cmp.floor_p50, "floor_ratio": cmp.floor_ratio,
            "batching": batching.effective(), "pipeline": use_pipeline(args).to_dict(),
        }, indent=2))
        return 0
    print()
    print(f"{cmp.requests} distinct requests per phase, profile {cmp.profile}, cache off, warm-up excluded; "
          f"machine: {cmp.machine['cores']} cores, {cmp.machine['memory_gib']} GiB")
    print(cmp.table())
    print(cmp.built_text())
    if cmp.floor:
        print(f"Dask's floor: a task that does nothing takes {1000 * cmp.floor_p50:.1f} ms there and back on an idle "
              f"cluster (p50); a one-task request pays at least that, {cmp.floor_ratio:.3f}x centralized latency here.")
    print()
    print(f"stage trace of one distributed request ({cmp.example.prediction.symbol} {cmp.example.prediction.as_of}):")
    print(cmp.trace_table())
    if cmp.machine["cores"] and cmp.workers > cmp.machine["cores"]:
        print(f"\nnote: {cmp.workers} workers on {cmp.machine['cores']} cores: the workers share cores, so throughput cannot scale past {cmp.machine['cores']}x.")
    return 0
