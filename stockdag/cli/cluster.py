"""``stockdag cluster plan|up|status|down``: clusters described by a spec (experiments/clusters/*.yaml)."""
from __future__ import annotations

import json


def add_parser(sub):
    """Add `cluster` and its actions; return the actions' subparsers (the caller completes their descriptions)."""
    p = sub.add_parser("cluster", help="plan, start, list and stop clusters described by a spec (experiments/clusters/*.yaml)",
                       description="Clusters from a spec: kind local (this host), emulated (this host, cgroup CPU shares and link delays; root), ec2 (dask-cloudprovider) or ssh (your own machines, over SSH).")
    csub = p.add_subparsers(dest="action", required=True, metavar="ACTION", help="plan | up | status | down (each has --help)")
    c = csub.add_parser("plan", help="dry run: what would start, the commands each machine runs, the cost per hour; starts and calls nothing")
    c.add_argument("spec", help="cluster spec: a YAML file or a name in experiments/clusters (e.g. local-2)")
    c.add_argument("--json", action="store_true", help="print the plan as JSON")
    c = csub.add_parser("up", help="start a cluster that keeps running after this command returns; prints its scheduler and dashboard addresses")
    c.add_argument("spec", help="cluster spec: a YAML file or a name in experiments/clusters")
    c.add_argument("--json", action="store_true", help="print the cluster's state as JSON")
    c = csub.add_parser("status", help="list the clusters started with `cluster up` (id, kind, scheduler, dashboard, alive)")
    c.add_argument("--json", action="store_true", help="print the list as JSON")
    c = csub.add_parser("down", help="stop clusters started with `cluster up`")
    c.add_argument("names", nargs="*", help="cluster ids or spec names to stop (see `stockdag cluster status`)")
    c.add_argument("--all", action="store_true", help="stop every recorded cluster (and, for ec2 specs given with --spec, terminate your own stockdag-tagged instances: tag stockdag-owner is your AWS identity and user@host)")
    c.add_argument("--spec", action="append", default=[], help="with --all: an ec2 spec whose region to sweep for your stockdag-tagged instances (repeatable)")
    c.add_argument("--yes", action="store_true", help="with --all --spec: terminate your tagged instances without asking (without a terminal, --all --spec refuses unless --yes)")
    return csub


def check(parser, args) -> None:
    if args.action == "down" and args.spec and not args.all:
        parser.error("--spec sweeps a region for tagged instances, with --all only")


def run(args) -> int:
    from .. import deploy
    from ..deploy import service

    if args.action == "plan":
        pl = deploy.plan(args.spec)
        print(json.dumps(pl.to_dict(), indent=2) if args.json else pl.text())
    elif args.action == "up":
        info = service.up(args.spec)
        if args.json:
            print(json.dumps(info, indent=2))
        else:
            print(f"cluster {info['cluster_id']} ({info['kind']}) is up; stop it with `stockdag cluster down {info['cluster_id']}`")
            print(f"  scheduler: {info['scheduler']}")
            print(f"  dashboard: {info['dashboard']}")
            print(f"  workers:   {', '.join(info['workers'])}")
    elif args.action == "status":
        rows = service.status()
        if args.json:
            print(json.dumps(rows, indent=2))
        elif not rows:
            print("no clusters running (start one with `stockdag cluster up SPEC`)")
        else:
            print(f"{'CLUSTER':<28} {'KIND':<9} {'STATE':<5} {'WORKERS':>7}  {'SCHEDULER':<26} DASHBOARD")
        for r in rows if not args.json else ():
            print(f"{r['cluster_id']:<28} {r['kind']:<9} {'up' if r['alive'] else 'DEAD':<5} {len(r['workers']):>7}  "
                  f"{r['scheduler']:<26} {r['dashboard']}")
            if r.get("tls"):
                print(f"{'':<28} TLS certificates in {r['tls']['ca_file'].rsplit('/', 1)[0]}/")
    else:
        stopped = service.down(args.names, all=args.all)
        for r in stopped:
            print(f"stopped {r['cluster_id']} ({r['kind']})")
        if args.all:
            from ..deploy.orphans import terminate_orphans

            for iid in terminate_orphans(args.spec, yes=args.yes):
                print(f"terminated orphan instance {iid}")
        if not stopped and not args.spec:
            print("no clusters were running")
    return 0
