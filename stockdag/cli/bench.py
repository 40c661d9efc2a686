"""``stockdag bench URL``: measure a server from the client side (:mod:`stockdag.lab.bench`)."""
from __future__ import annotations

import json
import sys

from ..lab.bench.vocabulary import ARRIVALS, MIXES
from .common import Command, arg, flag, given, load_options
from .options import http_url, iso_date, non_negative_float, non_negative_int, positive_float, positive_int, records_file, symbol

COMMAND = Command(
    "bench", help="measure a server from the client side: open or closed loop load, latency percentiles",
    description="Send requests to URL and report offered rate, achieved throughput, latency percentiles (HDR histogram) and "
                "errors by kind. A stockdag server's base URL gets a seeded mix of /predict/{symbol}?as_of= requests; any "
                "other URL is requested as given. Open loop (--rate) counts latency from each request's intended send time, "
                "so a stalled server cannot hide its stall; closed loop (--users) waits for each answer before the next "
                "request, and so hides stalls. Exits with status 1 when no request succeeded.",
    arguments=(
        arg("url", type=http_url, help="server base URL (e.g. http://127.0.0.1:8000) or any http(s) URL to request as given"),
        load_options(users="closed loop: concurrent users, each sending the next request when the last returns"),
        arg("--arrivals", choices=ARRIVALS, default=None, help="open-loop arrivals (default: stockdag.bench.arrivals); not with --users"),
        arg("--duration", type=positive_float, default=None, help="measured seconds after the warm-up (default: stockdag.bench.duration)"),
        arg("--requests", type=positive_int, default=None, help="send this many measured requests instead of running for --duration"),
        arg("--warmup", type=non_negative_float, default=None, help="seconds of requests excluded from the results (default: stockdag.bench.warmup)"),
        arg("--timeout", type=positive_float, default=None, help="per-request timeout in seconds, counted as error 'timeout' (default: stockdag.bench.timeout, "
            "else a stockdag server's deadline + 5 s, so its own 504 arrives first; 30 s for other servers)"),
        arg("--connections", type=positive_int, default=None, help="most open connections in open loop (default: stockdag.bench.connections); not with --users"),
        arg("--mix", choices=MIXES, default=None, help="how symbols and dates are drawn (default: stockdag.bench.distribution)"),
        arg("--zipf-s", type=positive_float, default=None, help="Zipf exponent of --mix zipf, implies it (default: stockdag.bench.zipf_s)"),
        arg("--symbols", type=symbol, nargs="+", default=None, help="symbols of the mix, each one the server lists (default: all the server lists)"),
        arg("--start", type=iso_date, default=None, help="first as-of date of the mix (default: stockdag.bench.start)"),
        arg("--end", type=iso_date, default=None, help="last as-of date of the mix (default: stockdag.bench.end)"),
        arg("--seed", type=non_negative_int, default=None, help="seed of the mix and of Poisson arrivals (default: stockdag.bench.seed)"),
        flag("--raw", "request URL as given even if it is a stockdag server (no mix options then)"),
        arg("--out", type=records_file, default=None, help="write every request's record to this .parquet or .csv file (its folder must exist)"),
    ), json="print the summary as JSON (no progress bar)")
add_parser = COMMAND.add


def check(parser, args) -> None:
    from .. import config

    if args.users is not None and given(args, "arrivals", "connections"):
        parser.error(f"{given(args, 'arrivals', 'connections')[0]} applies to open loop (--rate) only, not --users")
    if args.requests is not None and args.duration is not None:
        parser.error("give --duration or --requests, not both")
    mix_options = given(args, "mix", "zipf_s", "symbols", "start", "end")
    if args.raw and mix_options:
        parser.error(f"{mix_options[0]} shapes the request mix of a stockdag server; --raw sends the URL as given")
    if args.zipf_s is not None:
        if args.mix not in (None, "zipf"):
            parser.error(f"--zipf-s is the exponent of --mix zipf, not --mix {args.mix}")
        args.mix = "zipf"
    start, end = str(config.get("bench.start", args.start)), str(config.get("bench.end", args.end))
    if start > end:
        parser.error(f"the mix starts ({start}) after it ends ({end}): check --start and --end")


def run(args) -> int:
    from ..lab.bench import prepare, run, write_records

    bc = prepare(args.url, rate=args.rate, users=args.users, raw=args.raw, arrivals=args.arrivals, duration=args.duration,
                 requests=args.requests, warmup=args.warmup, timeout=args.timeout, connections=args.connections,
                 mix=args.mix, zipf_s=args.zipf_s, symbols=args.symbols, start=args.start, end=args.end, seed=args.seed,
                 progress=not args.json and sys.stderr.isatty())
    result = run(bc)
    if args.out:
        write_records(result.records, args.out)
    if args.json:
        print(json.dumps(result.summary.to_dict(), indent=2))
    else:
        print(result.summary.table())
        if args.out:
            print(f"  {len(result.records)} request records (warm-up included, flagged) in {args.out}")
    if result.summary.ok == 0:
        errors = ", ".join(f"{k} {v}" for k, v in sorted(result.summary.errors.items()))
        print(f"stockdag: error: none of the {result.summary.requests} measured requests succeeded"
              + (f" ({errors})" if errors else ""), file=sys.stderr)
        return 1
    return 0
