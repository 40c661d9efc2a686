"""The ``stockdag simulate`` and ``stockdag plan`` subcommands (registered by :mod:`stockdag.cli`)."""
from __future__ import annotations

import json
import os
import sys

from ..errors import InvalidRequest
from ..pipeline.modes import SERVING_MODES as SERVE_MODES
from ..pipeline.request import PROFILES
from .common import Command, arg, flag, load_options
from .options import (
    ami_id,
    arrivals,
    directory,
    instance_type,
    integer,
    non_negative_float,
    non_negative_int,
    output_dir,
    positive_float,
    positive_int,
    run_folder,
    security_group_id,
    strategy,
    yaml_file,
)

#: fewest simulated requests per candidate of `stockdag plan`: a p99 needs them
PLAN_MIN_REQUESTS = 50


def _dumps(value) -> str:
    from ..pipeline.result import finite  # (pulls in the stages: not at import, for `stockdag --help`)

    return json.dumps(finite(value), indent=2, allow_nan=False)


_RUN_FOLDER = arg("run", type=run_folder, help="a run folder, e.g. results/20261129-091417-default")

CALIBRATE = Command(
    "calibrate", help="fit stage costs and overheads from RUN's centralized + 1-worker points",
    description="Fit the simulator's stage costs and overheads from RUN's centralized and 1-worker points "
                "and store them in OUT/simulate/calibration.json (the one file it writes).",
    arguments=(
        _RUN_FOLDER,
        arg("--out", type=output_dir, default=None,
            help="folder that receives simulate/calibration.json (default: RUN itself; a committed run, one git "
                 "tracks, is refused without --out)"),
    ), json="print the fitted overheads as JSON")

VALIDATE = Command(
    "validate", help="measured vs simulated for every point of RUN, with relative errors",
    description="Simulate every measured point of RUN (calibrating first if needed) and print measured "
                "vs simulated p50/p90/p99/throughput with the relative errors.",
    arguments=(
        _RUN_FOLDER,
        arg("--repeats", type=positive_int, default=5, help="simulations per point, medians compared (default 5)"),
        flag("--nominal-speeds", "simulate a cluster spec's workers at its nominal speeds (cpu_share) instead of the speeds "
                                 "measured from the run's traces (default: measured; a cgroup quota does not deliver its share exactly)"),
    ), json="print every point and the median errors as JSON")

HOLDOUT = Command(
    "holdout", help="the simulator out of sample: fitted on RUN's centralized and 1-machine points, "
                    "every other point predicted; median errors per number of machines",
    description="Calibrate on RUN's centralized and 1-machine points only, predict every other point "
                "(2, 3, 5 machines, mixed machines) and print measured vs simulated with the relative "
                "errors, per number of machines. Writes OUT/simulate/holdout.json (OUT: --out, else RUN unless git "
                "tracks it), which the run's REPORT (stockdag report RUN) shows.",
    arguments=(
        arg("run", type=run_folder, help="a run folder, e.g. results/<stamp>-test-cases"),
        arg("--out", type=output_dir, default=None,
            help="folder that receives simulate/holdout.json (default: RUN itself; a committed run, one git "
                 "tracks, is refused without --out)"),
        arg("--repeats", type=positive_int, default=5, help="simulations per point, medians compared (default 5)"),
        # stockdag.lab.simulate.validate.SPEEDS (not imported here: it pulls in the simulator for every --help)
        arg("--speeds", choices=("fitted", "measured", "nominal"), default="fitted",
            help="worker speeds: the spec's scaled by what the fitted points measured (default: no predicted "
                 "point lends its own traces), measured from every point's traces, or the spec's nominal"),
    ), json="print the result as JSON")

RUN = Command(
    "run", help="simulate one configuration under one load, calibrated on RUN (a what-if `stockdag bench`)",
    description="Simulate `stockdag bench` against a service: centralized, replicated, or distributed on a cluster "
                "spec (local, emulated or ec2) under a placement strategy; print the bench summary, marked simulated.",
    arguments=(
        arg("run", type=run_folder, help="the measured run folder the simulator is calibrated on"),
        arg("--mode", choices=SERVE_MODES, default="distributed",  # the modes of `stockdag serve`
            help="how the service runs (default distributed)"),
        arg("--spec", default=None, help="cluster spec of distributed mode: a YAML file or a name in experiments/clusters "
                                         "(default: the embedded LocalCluster of --workers)"),
        arg("--workers", type=positive_int, default=2, help="LocalCluster workers without --spec; processes of replicated mode (default 2)"),
        arg("--strategy", type=strategy, default=None, help="placement strategy (stockdag.placement.STRATEGIES; default: the spec's, else stockdag.placement.strategy)"),
        load_options(users="closed loop: concurrent users"),
        arg("--arrivals", type=arrivals, default=None,
            help="open-loop arrivals (stockdag.lab.bench.ARRIVALS; default: the load generator's, constant)"),
        arg("--duration", type=positive_float, default=60.0, help="simulated seconds measured after the warm-up (default 60)"),
        arg("--warmup", type=non_negative_float, default=5.0, help="simulated seconds excluded first (default 5)"),
        arg("--timeout", type=positive_float, default=60.0, help="client timeout in seconds (default 60)"),
        arg("--seed", type=non_negative_int, default=0, help="seeds arrivals and the stage-cost draws (default 0)"),
    ), json="print the summary as JSON")

SIMULATE = Command(
    "simulate", help="calibrate the simulator on a measured run, and check it against every point (simulated)",
    description="A discrete-event model of the service (SimPy), fitted on a run's centralized and 1-worker "
                "points. calibrate stores the fit in OUT/simulate/calibration.json (OUT: --out, else RUN unless "
                "git tracks it); validate simulates every measured point and prints measured vs simulated with "
                "the relative errors. validate, run and plan fit when RUN has no stored calibration and store "
                "that fit in RUN only when git does not track RUN; they write nothing else.",
    actions_help="calibrate | validate | holdout | run",
    actions=(CALIBRATE, VALIDATE, HOLDOUT, RUN))

PLAN = Command(
    "plan", help="the cheapest EC2 cluster and strategy predicted (simulated) to hold a p99 objective at a rate",
    description="Search instance types x machine counts x placement strategies with the simulator calibrated "
                "on a measured run; print the cheapest cluster predicted to hold p99 <= --p99 seconds at "
                "--rate req/s, with its predicted p50/p99/throughput and $/hour, and write it as a cluster spec "
                "for `stockdag cluster plan` / `up`. It names the run it calibrates on first.",
    arguments=(
        arg("--rate", type=positive_float, required=True, help="offered load, requests per second (open loop)"),
        arg("--p99", type=positive_float, required=True, help="latency objective: p99 in seconds"),
        arg("--profile", choices=PROFILES, default=None,
            help="workload profile; the newest run under --results with that profile is the calibration (default: stockdag.profile)"),
        arg("--run", type=run_folder, default=None, help="calibrate on this run folder instead of the newest one of the profile"),
        arg("--results", type=directory, default=None, help="folder of run folders (default results)"),
        arg("--instance-types", type=instance_type, nargs="+", default=None,
            help="EC2 instance types to consider (default: stockdag.simulate.instance_types)"),
        arg("--max-machines", type=positive_int, default=64, help="most worker instances (default 64)"),
        arg("--max-hourly-usd", type=positive_float, default=None, help="budget: most USD per hour (default: none)"),
        arg("--requests", type=integer(PLAN_MIN_REQUESTS), default=600,
            help=f"simulated requests per candidate, at least {PLAN_MIN_REQUESTS} (default 600)"),
        arg("--out", type=yaml_file, default="planned-cluster.yaml",
            help="where to write the cluster spec (the file plan writes), checked before the search "
                 "(default planned-cluster.yaml in the working directory)"),
        arg("--ami", type=ami_id, default=None, help="AMI id written into the spec (default: a placeholder to replace)"),
        arg("--security-group", type=security_group_id, default=None, help="security group id written into the spec (default: a placeholder)"),
    ), json="print the plan (and every candidate tried) as JSON")


def add_parsers(sub) -> dict:
    """Add ``simulate`` and ``plan`` to ``sub``; return ``{command: function}``."""
    SIMULATE.add(sub)
    PLAN.add(sub)
    return {"simulate": cmd_simulate, "plan": cmd_plan}


def cmd_simulate(args) -> int:
    from ..lab.simulate import calibrate, validate

    folder = args.run  # a run folder, checked by the parser
    if args.action == "calibrate":
        from ..lab.experiments.paths import derived_out

        out = derived_out(folder, args.out, calibrate.FILE)  # before the fit: a refusal costs nothing
        path = calibrate.calibrate(folder, out=out)
        with open(path) as f:
            cal = json.load(f)
        if args.json:
            print(json.dumps({k: v for k, v in cal.items() if k != "samples"} | {"samples": len(cal["samples"]), "path": path}, indent=2))
        else:
            o = cal["overheads"]
            print(f"wrote {path}: {len(cal['samples'])} traced requests from {len(cal['fitted_on'])} points; overheads (ms): "
                  f"centralized request {o['central_request'] * 1e3:.1f}, distributed request {o['request'] * 1e3:.1f}, "
                  f"hop {o['hop'] * 1e3:.2f}, task {o['task'] * 1e3:.2f} (distributed ones from {cal['distributed_overheads_from']})")
        return 0
    if args.action == "run":
        return _simulate_run(folder, args)
    if args.action == "holdout":
        from ..lab.experiments.paths import derived_out

        out = derived_out(folder, args.out, validate.HOLDOUT_FILE)  # before the simulations: a refusal costs nothing
        result = validate.holdout(folder, repeats=args.repeats, speeds=args.speeds)
        path = validate.save_holdout(out, result)
        print(_dumps(result) if args.json else "\n".join([*validate.holdout_lines(result), "", f"written to {path}"]))
        return 0
    result = validate.validate(folder, repeats=args.repeats, speeds="nominal" if args.nominal_speeds else "measured")
    print(_dumps(result) if args.json else validate.text(result))
    return 0


def _simulate_run(folder: str, args) -> int:
    from .. import config
    from ..deploy import load_spec
    from ..lab.bench.loadgen import BenchConfig
    from ..lab.simulate import calibrate
    from ..lab.simulate.clusters import local_workers, workers_from_spec
    from ..lab.simulate.model import SimConfig, simulate
    from ..placement.registry import check_strategy

    if args.users is not None and args.arrivals is not None:
        raise InvalidRequest("--arrivals applies to open loop (--rate) only, not --users")
    cal = calibrate.load(folder)
    costs, overheads = calibrate.inputs(cal)
    # worker speeds relative to the machine the costs were measured on (a quarter-core testbed: 0.25)
    reference = calibrate.reference_speed(cal)
    cores = calibrate.read_config(folder).get("machine", {}).get("cores")
    strategy = None
    if args.mode == "distributed":
        if args.spec:
            spec = load_spec(args.spec)
            workers, strategy = workers_from_spec(spec, reference), spec.strategy
        else:
            workers = local_workers(args.workers, reference)
        strategy = args.strategy or strategy or config.get("placement.strategy")
        check_strategy(strategy)
        local = any(w.host == "local" for w in workers)
        sim = SimConfig("distributed", workers, strategy, cores={"local": cores} if local and cores else None,
                        granularity=config.get("pipeline.granularity"))
    else:
        sim = SimConfig(args.mode, replicas=args.workers, cores={"local": cores} if cores else None)
    try:
        given = {"arrivals": args.arrivals} if args.arrivals is not None else {}
        bench = BenchConfig("sim://", rate=args.rate, users=args.users, duration=args.duration,
                            warmup=args.warmup, timeout=args.timeout, seed=args.seed, **given)
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
    summary = simulate(sim, costs, overheads, bench, seed=args.seed).summary
    summary.url = f"SIMULATED {args.mode}" + (f" {len(sim.workers)} workers, {strategy}" if strategy else "")
    if args.json:
        print(_dumps(summary.to_dict()))
    else:
        print(summary.table())
        print(f"  (simulated, calibrated on {folder})")
    return 0


def newest_run(results: str, profile: str) -> str:
    """The newest run folder under ``results`` whose sweep used ``profile``."""
    from ..lab.simulate.calibrate import read_config

    if os.path.isdir(results):
        for name in sorted(os.listdir(results), reverse=True):
            folder = os.path.join(results, name)
            if os.path.exists(os.path.join(folder, "config.json")) and \
                    read_config(folder).get("params", {}).get("profile") == profile:
                return folder
    raise InvalidRequest(f"no measured run with profile {profile!r} under {results}/ to calibrate on "
                         f"(run a sweep with profile: {profile}, or give --run)")


def cmd_plan(args) -> int:
    import yaml

    from .. import config
    from ..deploy import parse_spec, prices
    from ..deploy import plan as cluster_plan
    from ..lab.experiments.paths import committed
    from ..lab.simulate import calibrate, planner

    profile = args.profile or config.get("profile")
    folder = args.run or newest_run(args.results or "results", profile)
    # said first, on stderr (stdout may be --json): which run, why that one, and whether it is a committed one
    why = "given with --run" if args.run else f"the newest run with profile {profile} under {args.results or 'results'}/; --run chooses"
    kind = "committed" if committed(folder) else "not committed: a local run"
    print(f"stockdag plan: calibrating on {folder} ({why}; {kind}); writes the cluster spec to {args.out}", file=sys.stderr)
    cal = calibrate.load(folder)  # a fit made here is stored in the run folder only when git does not track it
    costs, overheads = calibrate.inputs(cal)
    progress = None
    if not args.json and sys.stderr.isatty():
        def progress(r):
            print(f"  simulated {r['machines']} x {r['instance_type']} {r['strategy']}: p99 {r['p99_ms']:.0f} ms, "
                  f"{r['throughput']:.1f} req/s", file=sys.stderr)
    result = planner.plan(args.rate, args.p99, costs, overheads, instance_types=args.instance_types,
                          max_machines=args.max_machines, max_hourly=args.max_hourly_usd, requests=args.requests,
                          progress=progress, granularity=config.get("pipeline.granularity"))
    if result.choice is None:
        if args.json:
            print(_dumps(result.to_dict()))
        print(f"stockdag: {result.reason}", file=sys.stderr)
        return 1
    c = result.choice
    raw = c.spec(name="planned", ami=args.ami, security_group=args.security_group)
    spec = parse_spec(raw, source=args.out)  # what `cluster plan` will check, checked before writing
    with open(args.out, "w") as f:
        f.write(f"# written by `stockdag plan --rate {args.rate:g} --p99 {args.p99:g}` from the simulator calibrated on "
                f"{os.path.basename(os.path.abspath(folder))} (simulated, not measured)\n")
        if not args.ami or not args.security_group:
            f.write("# replace ami and security_groups with your account's before `stockdag cluster up`\n")
        yaml.safe_dump(raw, f, sort_keys=False)
    if args.json:
        print(_dumps(result.to_dict() | {"spec": args.out, "calibration": folder}))
        return 0
    print(f"cheapest cluster predicted (simulated) to hold p99 <= {args.p99:g} s at {args.rate:g} req/s:")
    print(f"  {c.machines} x {c.instance_type} ({prices.EC2_PRICES[c.instance_type][1]} vCPUs each) + scheduler "
          f"{planner.scheduler_type()}, strategy {c.strategy}")
    print(f"  predicted p50 {c.p50_ms:.0f} ms, p99 {c.p99_ms:.0f} ms, throughput {c.throughput:.1f} req/s")
    print(f"  ${c.hourly_usd:.4f}/hour (on-demand {prices.PRICES_REGION} prices of {prices.PRICES_DATE}); "
          f"{len(result.tried)} candidates simulated, calibrated on {folder}")
    print(f"  wrote the spec to {args.out} (check it with `stockdag cluster plan {args.out}`; {cluster_plan(spec).hourly_usd} $/h there)")
    return 0
