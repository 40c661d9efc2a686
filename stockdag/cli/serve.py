"""``stockdag serve``: the HTTP prediction service (FastAPI + uvicorn) in one of the serving modes."""
from __future__ import annotations

import sys

from ..errors import InvalidRequest
from ..pipeline.modes import SERVING_MODES
from .common import (
    DATA_OPTIONS,
    PIPELINE_OPTION,
    PROFILE_OPTION,
    Command,
    arg,
    check_cluster,
    check_data,
    cluster_options,
    one_line,
    reach_scheduler,
    use_pipeline,
)
from .options import host_name, port, positive_float, positive_int

COMMAND = Command(
    "serve", help="serve predictions over HTTP (FastAPI + uvicorn)",
    description="Serve GET /predict/{symbol}?as_of=YYYY-MM-DD, /symbols, /health, /metrics and the OpenAPI docs (/docs). "
                "Beyond --max-in-flight requests the server answers 503 with Retry-After at once; past --deadline, 504.",
    arguments=(
        arg("--mode", choices=SERVING_MODES, default=None,
            help="centralized: one request's pipeline at a time in the server process (the baseline); replicated: --replicas "
                 "processes each running whole requests; distributed: many requests in flight on one Dask client (default: "
                 "replicated with --replicas, distributed with --workers, --scheduler or --strategy, else stockdag.serve.mode)"),
        arg("--replicas", type=positive_int, default=None, help="processes of replicated mode (default: stockdag.serve.replicas); implies --mode replicated"),
        cluster_options(workers="LocalCluster worker processes of distributed mode, one thread each (default: stockdag.serve.workers)",
                        scheduler="address of a running Dask scheduler for distributed mode instead of a LocalCluster",
                        strategy="job-placement strategy of distributed mode (see stockdag.placement.STRATEGIES; default: stockdag.placement.strategy)"),
        PROFILE_OPTION,
        arg("--host", type=host_name, default=None, help="address to bind (default: stockdag.serve.host)"),
        arg("--port", type=port(1), default=None, help="TCP port, 1-65535 (default: stockdag.serve.port)"),
        arg("--max-in-flight", type=positive_int, default=None, help="prediction requests admitted at once, at least 1 (default: stockdag.serve.max_in_flight)"),
        arg("--deadline", type=positive_float, default=None, help="seconds (> 0) before a prediction answers 504 (default: stockdag.serve.deadline)"),
        DATA_OPTIONS, PIPELINE_OPTION,
    ))
add_parser = COMMAND.add


def check(parser, args) -> None:
    check_data(parser, args)
    check_cluster(parser, args, {"replicated": ("replicas",), "distributed": ("workers", "scheduler", "strategy")})


def _check_can_listen(host: str, port: int) -> None:
    """Bind the address once before anything starts, so that a taken port or a foreign address is one line."""
    import socket

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            sock.bind(address)
    except OSError as exc:
        raise InvalidRequest(f"cannot listen on {host}:{port}: {exc.strerror or one_line(exc)}") from None


def _print_dashboard(info: dict) -> None:
    if info.get("dashboard"):
        print(f"stockdag serve: Dask dashboard at {info['dashboard']}", file=sys.stderr)


def run(args) -> int:
    import dask

    from .. import config
    from ..run.isolated import sigterm_unwinds
    from ..serve import create_app, serve

    use_pipeline(args)  # create_app's configuration snapshot carries the spec into every request
    host, port = config.get("serve.host", args.host), int(config.get("serve.port", args.port))
    _check_can_listen(host, port)
    if args.scheduler:
        reach_scheduler(args.scheduler)
    data = {k: v for k, v in {"stockdag.data.source": args.source, "stockdag.data.data_dir": args.data_dir}.items() if v is not None}
    with dask.config.set(data):  # create_app snapshots the configuration (a copy), so the override outlives this block
        app = create_app(args.mode, replicas=args.replicas, workers=args.workers, scheduler=args.scheduler,
                         strategy=args.strategy, profile=args.profile, max_in_flight=args.max_in_flight, deadline=args.deadline,
                         on_ready=_print_dashboard)
    print(f"stockdag serve: {app.state.backend.mode} on http://{host}:{port} (docs at /docs); Ctrl-C stops", file=sys.stderr)
    with sigterm_unwinds():  # uvicorn re-raises a SIGTERM after its graceful shutdown: exit through the exit handlers
        serve(app, host=host, port=port)
    return 0
