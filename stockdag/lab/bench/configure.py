"""From the options of a run to a checked :class:`~stockdag.lab.bench.BenchConfig` (what ``stockdag bench`` runs).

:func:`prepare` resolves each option against ``stockdag.lab.bench.*``, asks the
URL whether it is a stockdag server (its symbols and deadline shape the mix and
the timeout), checks that a server is listening before any request is sent,
and turns every problem into one :class:`~stockdag.errors.InvalidRequest`.
"""
from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from ... import config
from ...errors import InvalidRequest

#: the options that shape a stockdag server's request mix (named as ``stockdag bench``'s options)
MIX_OPTIONS = ("mix", "zipf_s", "symbols", "start", "end")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


async def reach_url(url: str, timeout: float) -> None:
    """Open (and close) one TCP connection to the URL's host before the run, sending no request, so that a
    server that is not there is one line instead of a run of failures."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, port), timeout)
    except OSError as exc:
        raise InvalidRequest(f"cannot connect to {parts.hostname}:{port} ({url}): {exc.strerror or _one_line(exc)}") from None
    except TimeoutError:
        raise InvalidRequest(f"cannot connect to {parts.hostname}:{port} ({url}) within {timeout:g} s") from None
    writer.close()


def prepare(url: str, *, rate: float | None = None, users: int | None = None, raw: bool = False,
            arrivals: str | None = None, duration: float | None = None, requests: int | None = None,
            warmup: float | None = None, timeout: float | None = None, connections: int | None = None,
            mix: str | None = None, zipf_s: float | None = None, symbols: list[str] | None = None,
            start: str | None = None, end: str | None = None, seed: int | None = None, progress: bool = False):
    """The :class:`~stockdag.lab.bench.BenchConfig` of a run against ``url``; None options read ``stockdag.lab.bench.*``.

    ``raw`` requests ``url`` as given even if it is a stockdag server. The timeout defaults to a stockdag
    server's deadline + 5 s (its own 504 arrives first).

    Raises
    ------
    InvalidRequest
        a mix option for a URL that is not a stockdag server, a symbol the server does not list, a host
        that does not accept connections, or an option the configuration rejects.
    """
    from .loadgen import BenchConfig, default_timeout, probe_stockdag, stockdag_health
    from .mix import RequestMix

    def cfg(key, value):
        return config.get(f"bench.{key}", value)

    seed = int(cfg("seed", seed))
    request_mix = None
    served = None if raw else asyncio.run(probe_stockdag(url))
    if served is None:
        # only a TCP connect: 10 s when no per-request timeout is configured
        asyncio.run(reach_url(url, float(cfg("timeout", timeout) or 10)))
        values = {"mix": mix, "zipf_s": zipf_s, "symbols": symbols, "start": start, "end": end}
        given = [f"--{name.replace('_', '-')}" for name in MIX_OPTIONS if values[name] not in (None, False)]
        if given:
            raise InvalidRequest(f"{given[0]} shapes the request mix of a stockdag server, and {url} is not one "
                                 "(no /health naming the stockdag service)")
    elif symbols:
        unknown = [x for x in symbols if x not in served]
        if unknown:
            raise InvalidRequest(f"{url} does not serve {', '.join(unknown)}; it lists {', '.join(served)}")
    timeout = cfg("timeout", timeout)
    timeout = float(timeout) if timeout is not None else default_timeout(asyncio.run(stockdag_health(url)))
    try:
        if served:
            request_mix = RequestMix(symbols or served, str(cfg("start", start)), str(cfg("end", end)),
                                     distribution=cfg("distribution", mix), s=float(cfg("zipf_s", zipf_s)), seed=seed)
        return BenchConfig(url, rate=rate, users=users, arrivals=cfg("arrivals", arrivals),
                           duration=float(cfg("duration", duration)), requests=requests,
                           warmup=float(cfg("warmup", warmup)), timeout=timeout,
                           connections=int(cfg("connections", connections)), mix=request_mix, seed=seed,
                           progress=progress,
                           extra={"mix": None if request_mix is None else {
                               "distribution": request_mix.distribution, "symbols": list(request_mix.symbols),
                               "start": request_mix.start, "end": request_mix.end, "seed": seed}})
    except ValueError as exc:
        raise InvalidRequest(str(exc)) from None
