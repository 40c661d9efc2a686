"""``stockdag webapp``: the Bokeh page that load-tests a server URL and shows latency and throughput live."""
from __future__ import annotations

import sys

from ..errors import InvalidRequest
from .options import host_name, http_url, port


def add_parser(sub) -> None:
    p = sub.add_parser("webapp", help="a web page that load-tests a server URL and shows latency and throughput live",
                       description="Serve a Bokeh app (default http://127.0.0.1:5006) that sends requests to a server URL, open loop "
                                   "(rate) or closed loop (users), and shows each request's latency, a histogram, percentiles, offered vs "
                                   "achieved throughput and errors live; for a stockdag server also the mean time per stage and which "
                                   "worker ran each stage. Finished runs are kept (raw CSV + summary) and can be overlaid for comparison.")
    p.add_argument("--port", type=port(0), default=None, help="TCP port of the web app, 0-65535 (default: stockdag.webapp.port; 0 picks a free one)")
    p.add_argument("--host", type=host_name, default=None, help="address to bind (default: stockdag.webapp.host)")
    p.add_argument("--url", type=http_url, default=None, help="server URL the form is prefilled with (default: stockdag.webapp.url, a local `stockdag serve`)")
    p.add_argument("--store", default=None, help="folder where finished runs are kept (default: stockdag.webapp.store or ~/.cache/stockdag/webapp)")


def run(args) -> int:
    from ..lab.webapp import make_server

    try:
        server = make_server(host=args.host, port=args.port, store=args.store, url=args.url)
    except OSError as exc:  # the port is taken or the address is not this machine's
        raise InvalidRequest(f"cannot listen on {args.host or '127.0.0.1'}:{args.port}: {exc.strerror or exc}") from None
    server.start()
    print(f"stockdag webapp: http://{server.address or '127.0.0.1'}:{server.port}/ (runs kept in {server.store.folder}); "
          "Ctrl-C stops", file=sys.stderr)
    server.io_loop.start()
    return 0
