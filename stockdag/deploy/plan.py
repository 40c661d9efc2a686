"""``stockdag cluster plan``: what a spec would start, the commands each machine runs, and its cost per hour.

Calls nothing: no process, no cloud API. Each kind's class provides
``plan_machines(spec)``, which returns :class:`Machine` rows, and says how its
cost reads (``prices_date``, ``cost_line``); this module adds them up and
formats the text.
"""
from __future__ import annotations

import dataclasses

from .base import Machine
from .spec import KINDS, load_spec


@dataclasses.dataclass
class Plan:
    spec: object
    machines: list[Machine]
    notes: list[str]

    @property
    def hourly_usd(self) -> float | None:
        costs = [m.hourly_usd for m in self.machines]
        return None if any(c is None for c in costs) else round(sum(costs), 4)

    def to_dict(self) -> dict:
        return {"name": self.spec.name, "kind": self.spec.kind, "spec": self.spec.source,
                "machines": [dataclasses.asdict(m) for m in self.machines],
                "hourly_usd": self.hourly_usd, "prices_date": KINDS[self.spec.kind].prices_date,
                "notes": self.notes}

    def text(self) -> str:
        s = self.spec
        lines = [f"cluster {s.name!r} (kind {s.kind}{', from ' + s.source if s.source else ''}): "
                 f"1 scheduler + {s.n_workers} worker{'s' if s.n_workers != 1 else ''} in "
                 f"{len(s.worker_groups)} group{'s' if len(s.worker_groups) != 1 else ''}"]
        for g in s.worker_groups:
            extra = []
            if g.cpu_share is not None:
                extra.append(f"cpu_share {g.cpu_share:g}")
            if g.link_delay:
                extra.append(f"link_delay {g.link_delay * 1000:g} ms")
            if g.bandwidth:
                extra.append(f"bandwidth {g.bandwidth}")
            if g.instance_type:
                extra.append(g.instance_type)
            if g.hosts:
                extra.append(f"on {', '.join(g.hosts)}")
            lines.append(f"  group {g.name}: {g.count} x ({g.threads} thread{'s' if g.threads != 1 else ''}, memory {g.memory_limit}"
                         f"{', ' + ', '.join(extra) if extra else ''}), workers {', '.join(g.worker_names())}, resource {g.name}={g.threads}")
        lines.append("")
        priced = KINDS[s.kind].prices_date is not None
        for m in self.machines:
            cost = "" if not priced else (f"  ${m.hourly_usd:.4f}/h" if m.hourly_usd is not None else "  price unknown")
            lines.append(f"{m.role} {m.name} on {m.where}:{cost}")
            lines.extend(f"    $ {c}" for c in m.commands)
        lines.append("")
        lines.append(KINDS[s.kind].cost_line(self))
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)


def plan(spec) -> Plan:
    """The dry run of a spec (a path, mapping or ClusterSpec): nothing is started or called."""
    spec = load_spec(spec)
    machines, notes = KINDS[spec.kind].plan_machines(spec)
    return Plan(spec, machines, notes)
