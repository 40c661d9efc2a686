"""C6: the caching layer in front of the price (C2) and news (C5) retrievers.

Backends
--------
``lru``
    In-process LRU (:class:`cachetools.LRUCache`): one per worker process, so
    a hit needs the same symbol to land on the same worker (what the
    ``symbol-affinity`` placement strategy exploits).
``disk``
    :class:`diskcache.Cache` in one folder shared by every process of a host
    (SQLite index, one file per value, safe across processes).
``none``
    Always a miss.

A corrupt or truncated entry is a miss (and is dropped), never a crash. Keys
are built only from validated request fields (:func:`cache_key`).
Extend by subclassing :class:`Cache` and adding it to :data:`BACKENDS`.
"""
from __future__ import annotations

import logging
import os
import pickle
import tempfile
import threading
from abc import ABC, abstractmethod
from typing import Any

import cachetools

logger = logging.getLogger(__name__)


def cache_key(kind: str, request) -> str:
    """A cache key from the validated fields of a :class:`~stockdag.request.Request`.

    The symbol has already passed :data:`~stockdag.request.SYMBOL_RE`, so the
    key cannot carry path separators or other surprises.
    """
    as_of = request.as_of.isoformat() if request.as_of else "latest"
    span = request.history_days if kind == "prices" else request.news_days
    src = request.source if request.source != "csv" else f"csv:{request.data_dir}"
    return f"{kind}|{src}|{request.symbol}|{as_of}|{span}"


class Cache(ABC):
    """A key -> value store. ``get`` returns None on a miss or an unreadable entry."""

    name = ""

    @abstractmethod
    def get(self, key: str) -> Any | None: ...

    @abstractmethod
    def set(self, key: str, value: Any) -> None: ...

    def clear(self) -> None:  # pragma: no cover - overridden
        pass


class NoCache(Cache):
    name = "none"

    def get(self, key):
        return None

    def set(self, key, value):
        return None


class LRUCache(Cache):
    """Thread-safe in-process LRU of at most ``size`` entries."""

    name = "lru"

    def __init__(self, size: int = 256):
        self._data: cachetools.LRUCache = cachetools.LRUCache(maxsize=size)
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            return self._data.get(key)

    def set(self, key, value):
        with self._lock:
            self._data[key] = value

    def clear(self):
        with self._lock:
            self._data.clear()


class DiskCache(Cache):
    """A :class:`diskcache.Cache` shared by the processes of one host.

    Every value is stored as its own file (``disk_min_file_size=0``), so a
    truncated write or a damaged file affects one entry only; reading it
    fails to unpickle and counts as a miss.
    """

    name = "disk"

    def __init__(self, directory: str | None = None, size_limit: int = 2**30):
        import diskcache

        self.directory = directory or os.path.join(tempfile.gettempdir(), "stockdag-cache")
        self._cache = diskcache.Cache(
            self.directory, size_limit=size_limit, disk_min_file_size=0, eviction_policy="least-recently-used"
        )

    def get(self, key):
        try:
            return self._cache.get(key, default=None, retry=True)
        except (pickle.UnpicklingError, EOFError, OSError, ValueError, TypeError,
                AttributeError, ImportError, IndexError, KeyError) as exc:
            # corrupt/truncated file or a value pickled by an incompatible version
            logger.warning("dropping unreadable cache entry %s: %s", key, exc)
            self._cache.delete(key, retry=True)
            return None

    def set(self, key, value):
        try:
            self._cache.set(key, value, retry=True)
        except OSError as exc:  # a full disk must not fail the request
            logger.warning("cannot write cache entry %s: %s", key, exc)

    def clear(self):
        self._cache.clear(retry=True)

    def close(self):
        self._cache.close()


BACKENDS = {"lru": LRUCache, "disk": DiskCache, "none": NoCache}

_instances: dict[tuple, Cache] = {}
_instances_lock = threading.Lock()


def get_cache(backend: str = "lru", size: int = 256, directory: str | None = None) -> Cache:
    """The process-wide cache for these settings (created on first use)."""
    key = (backend, size if backend == "lru" else None, directory if backend == "disk" else None)
    with _instances_lock:
        cache = _instances.get(key)
        if cache is None:
            if backend == "lru":
                cache = LRUCache(size)
            elif backend == "disk":
                cache = DiskCache(directory)
            elif backend == "none":
                cache = NoCache()
            else:
                raise ValueError(f"unknown cache backend {backend!r}; choose one of {', '.join(BACKENDS)}")
            _instances[key] = cache
        return cache


def reset_caches() -> None:
    """Empty and forget every process-wide cache (tests, benchmarks, cold starts)."""
    with _instances_lock:
        for cache in _instances.values():
            cache.clear()
        _instances.clear()
