"""How the cgroup CPU period stalls a short task on a scaled machine (issue 21: the testbed's period choice).

For each period, a cgroup of ``--share`` CPUs (stockdag.deploy.emulated.CPUCgroup, the testbed's own) runs a
child that does ``--tasks`` tasks of ``--task-ms`` CPU each, back to back (a busy machine: the quota is always
the limit), and prints the latency percentiles of one task (wall time from its start to its end) beside the
cgroup's own throttling counters. Needs root and the cgroup CPU controller. Run it on a quiet host: it measures.

    sudo python scripts/cgroup-period.py --share 0.25 --periods 10000 5000 4000 2000 1000
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

from stockdag.deploy.emulated import CPUCgroup, check_host

CHILD = r"""
import sys, time
task, n = float(sys.argv[1]) / 1000, int(sys.argv[2])
out = []
for _ in range(n):
    w0, c0 = time.perf_counter(), time.thread_time()
    while time.thread_time() - c0 < task:
        pass
    out.append(time.perf_counter() - w0)
print(" ".join(f"{x:.6f}" for x in out))
"""


def measure(layout, share: float, period: int, task_ms: float, tasks: int) -> str:
    if share * period < 1000:
        return f"period {period / 1000:g} ms: a {share * period / 1000:g} ms quota is below the kernel's 1 ms minimum (not possible)"
    cg = CPUCgroup(layout, ("stockdag-period", f"p{period}-{os.getpid()}"), share, period)
    cg.create()
    try:
        before = cg.stat()
        out = subprocess.run([sys.executable, "-c", CHILD, str(task_ms), str(tasks)], preexec_fn=cg.preexec(),
                             capture_output=True, text=True, check=True).stdout
        after = cg.stat()
    finally:
        cg.remove()
    lat = sorted(float(x) * 1000 for x in out.split())
    q = statistics.quantiles(lat, n=100)
    thr = after["nr_throttled"] - before["nr_throttled"]
    return (f"period {period / 1000:g} ms (quota {cg.quota_us / 1000:g} ms): {task_ms:g} ms task p50 {q[49]:.2f} p90 {q[89]:.2f} "
            f"p99 {q[98]:.2f} max {lat[-1]:.2f} ms (mean {statistics.fmean(lat):.2f}); throttled {thr} periods, "
            f"{(after['throttled_time'] - before['throttled_time']) / 1e6:.0f} ms")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--share", type=float, default=0.25, help="CPUs of the machine")
    p.add_argument("--periods", type=int, nargs="+", default=[10000, 5000, 4000, 2000, 1000], help="periods to try, microseconds")
    p.add_argument("--task-ms", type=float, default=1.0, help="CPU milliseconds of one task")
    p.add_argument("--tasks", type=int, default=300, help="tasks per period")
    args = p.parse_args(argv)
    layout = check_host()
    for period in args.periods:
        print(measure(layout, args.share, period, args.task_ms, args.tasks), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
