"""What is at a URL: :func:`probe` tells an unreachable URL from a reachable one, and a stockdag server
(its ``/health`` and symbols) from any other URL."""
from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

from ..bench import probe_stockdag


@dataclass
class Target:
    """What :func:`probe` found at a URL."""

    url: str
    reachable: bool
    message: str
    health: dict | None = None
    symbols: list[str] | None = None

    @property
    def stockdag(self) -> bool:
        return bool(self.health) and self.health.get("service") == "stockdag"

    @property
    def dashboard(self) -> str | None:
        """The server's ``/health`` dashboard URL if it is an http(s) URL, else None.

        The page puts it in a link: a measured server must not plant a ``javascript:`` (or any other
        scheme's) URL there, and a value that is not a string at all is no link either.
        """
        dash = (self.health or {}).get("dashboard")
        if not isinstance(dash, str):
            return None
        try:
            parts = urlsplit(dash)
        except ValueError:  # e.g. an unbalanced [ in the host
            return None
        return dash if parts.scheme in ("http", "https") and parts.netloc else None

    def describe(self) -> str:
        """One line for the page."""
        if not self.reachable:
            return self.message
        if not self.stockdag:
            return f"{self.url} answers ({self.message}); not a stockdag server: it will be requested as given"
        h = self.health
        parts = [f"stockdag {h.get('mode')} server", f"{h.get('workers')} worker(s)"]
        if h.get("strategy"):
            parts.append(f"placement {h['strategy']}")
        parts.append(f"profile {h.get('profile')}")
        if self.symbols:
            parts.append(f"symbols {', '.join(self.symbols)}")
        return ", ".join(parts)


def _base(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.path not in ("", "/") or parts.query:
        return None
    return f"{parts.scheme}://{parts.netloc}"


async def probe(url: str, timeout: float = 5.0) -> Target:
    """Is ``url`` reachable, and is it a stockdag server (then its health and symbols)?"""
    base = _base(url)
    target = base + "/health" if base else url
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as s:
            async with s.get(target) as r:
                status = r.status
                body = await r.read()
    except aiohttp.InvalidURL:
        return Target(url, False, f"cannot use {url!r}: not a valid URL")
    except aiohttp.ClientConnectorError as exc:
        reason = exc.os_error.strerror if exc.os_error is not None and exc.os_error.strerror else str(exc)
        return Target(url, False, f"cannot reach {url}: {reason.lower()} (is the server running?)")
    except TimeoutError:
        return Target(url, False, f"cannot reach {url}: no answer within {timeout:g} s")
    except (aiohttp.ClientError, OSError) as exc:
        return Target(url, False, f"cannot reach {url}: {type(exc).__name__}: {exc}")
    health = None
    if base and status == 200:
        try:
            health = json.loads(body)
        except ValueError:
            health = None
        if not isinstance(health, dict):
            health = None
    symbols = await probe_stockdag(url, timeout) if health and health.get("service") == "stockdag" else None
    return Target(url, True, f"HTTP {status}", health, symbols)
