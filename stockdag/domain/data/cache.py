"""C6: the caching layer in front of the price (C2) and news (C5) retrievers.

Backends
--------
``lru``
    In-process LRU (:class:`cachetools.LRUCache`): one per worker process, so
    a hit needs the same symbol to land on the same worker (what the
    ``symbol-affinity`` placement strategy exploits). A retriever whose C6 ran
    in another process looks again in its own, where it filled the entry
    (:attr:`Cache.per_process`).
``disk``
    :class:`diskcache.Cache` in one folder shared by every process of a host
    (SQLite index, one file per value, safe across processes). The default
    folder is private to the user (``<temp>/stockdag-cache-<uid>``, created
    0700); a folder another user owns is refused.
``redis``
    A Redis server (``stockdag.cache.url``) shared by every process of every
    machine: the backend for a cluster of several hosts. Keys are prefixed
    ``stockdag:`` so clearing the cache never touches other data on the server.

The shared backends (disk, Redis) store values as JSON and Arrow IPC
(:mod:`stockdag.domain.data.codec`), never pickle: bytes written by someone else
(another local user, whoever reaches the Redis server) can at worst be wrong
data, never code that runs. Anything else found there is a miss.
``none``
    Always a miss.

A corrupt or truncated entry is a miss (and is dropped), never a crash. A
cache that cannot be reached (a Redis outage) degrades to fetching from the
source, with a logged warning; it never fails a request. Keys are built only
from validated request fields (:func:`cache_key`).
Extend by subclassing :class:`Cache` and adding it to :data:`BACKENDS`.
"""
from __future__ import annotations

import logging
import os
import stat
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from typing import Any

import cachetools

from ...errors import StockdagError
from .codec import UnreadableValue, decode, encode

logger = logging.getLogger(__name__)


class UnsafeCacheDirectory(StockdagError, PermissionError):
    """The disk cache's folder is not this user's own: refused, since its values would be trusted."""

    http_status = 500


def default_directory() -> str:
    """The disk backend's default folder: ``<system temp>/stockdag-cache-<uid>``, private to this user."""
    uid = os.getuid() if hasattr(os, "getuid") else os.getlogin()
    return os.path.join(tempfile.gettempdir(), f"stockdag-cache-{uid}")


def private_directory(path: str, what: str = "cache folder",
                      hint: str = "set stockdag.cache.directory to a folder of your own") -> str:
    """Create ``path`` mode 0700 if missing; refuse it if it is not a real folder owned by this user.

    In a shared temporary folder another user can create the path first (and
    plant values in it): such a folder, or a symlink, raises :class:`UnsafeCacheDirectory`.
    ``what`` and ``hint`` word the error for the caller's folder (the model store uses it too).
    """
    try:
        os.makedirs(path, mode=0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeCacheDirectory(f"{what} {path} is not a folder (a symlink or a file): refusing to use it")
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise UnsafeCacheDirectory(f"{what} {path} belongs to another user (uid {st.st_uid}): refusing to use it; {hint}")
    return path


def cache_key(kind: str, request) -> str:
    """A cache key from the validated fields of a :class:`~stockdag.pipeline.request.Request`.

    The symbol has already passed :data:`~stockdag.pipeline.request.SYMBOL_RE`, so the
    key cannot carry path separators or other surprises.
    """
    as_of = request.as_of.isoformat() if request.as_of else "latest"
    span = request.history_days if kind == "prices" else request.news_days
    src = request.source if request.source != "csv" else f"csv:{request.data_dir}"
    return f"{kind}|{src}|{request.symbol}|{as_of}|{span}"


class Cache(ABC):
    """A key -> value store. ``get`` returns None on a miss or an unreadable entry.

    ``options`` names the settings (of ``size``, ``directory``, ``url``) that
    :func:`get_cache` passes to :meth:`from_options`; one instance per process
    exists for each combination of them.
    """

    name = ""
    options: tuple[str, ...] = ()
    #: each process has its own entries (lru): a value is found only in the process that stored it, so the
    #: retrievers look again where they run (C6 may have run on another worker) before fetching
    per_process = False

    @classmethod
    def from_options(cls, **options) -> Cache:
        """The cache for these settings (a subclass checks them here)."""
        return cls(**options)

    @abstractmethod
    def get(self, key: str) -> Any | None: ...

    @abstractmethod
    def set(self, key: str, value: Any) -> None: ...

    def clear(self) -> None:  # noqa: B027 (optional: a backend without a clear keeps this no-op)  # pragma: no cover
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
    options = ("size",)
    per_process = True

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


def _safe_disk():
    import diskcache

    class SafeDisk(diskcache.Disk):
        """diskcache's Disk that never unpickles: a pickled key or value in the index is unreadable."""

        def fetch(self, mode, filename, value, read):
            if mode == diskcache.core.MODE_PICKLE:
                raise UnreadableValue("a pickled entry (this cache stores bytes only)")
            return super().fetch(mode, filename, value, read)

        def get(self, key, raw):
            if not raw:
                raise UnreadableValue("a pickled key (this cache stores string keys only)")
            return super().get(key, raw)

    return SafeDisk


class DiskCache(Cache):
    """A :class:`diskcache.Cache` shared by the processes of one host.

    Values are stored as :mod:`~stockdag.domain.data.codec` bytes, each in its own file
    (``disk_min_file_size=0``), so a truncated write or a damaged file affects
    one entry only; an entry that does not decode is a miss and is dropped.
    """

    name = "disk"
    options = ("directory",)

    def __init__(self, directory: str | None = None, size_limit: int = 2**30):
        import diskcache

        self.directory = private_directory(directory or default_directory())
        self._cache = diskcache.Cache(
            self.directory, size_limit=size_limit, disk_min_file_size=0, eviction_policy="least-recently-used",
            disk=_safe_disk(),
        )

    def get(self, key):
        try:
            raw = self._cache.get(key, default=None, retry=True)
            return None if raw is None else decode(raw)
        except (OSError, UnreadableValue) as exc:
            # corrupt/truncated file, another format (a planted pickle), another version
            logger.warning("dropping unreadable cache entry %s: %s", key, exc)
            self._cache.delete(key, retry=True)
            return None

    def set(self, key, value):
        try:
            self._cache.set(key, encode(value), retry=True)
        except OSError as exc:  # a full disk must not fail the request
            logger.warning("cannot write cache entry %s: %s", key, exc)

    def clear(self):
        self._cache.clear(retry=True)

    def close(self):
        self._cache.close()


class RedisCache(Cache):
    """Values (:mod:`~stockdag.domain.data.codec` bytes) in a Redis server that the processes of several machines share.

    Parameters
    ----------
    url
        ``redis://[:password@]host:port/db`` (``rediss://`` for TLS, ``unix://``
        for a socket). Client options may ride in the query string, e.g.
        ``?socket_timeout=2``; they override the short defaults below.
    socket_timeout
        Seconds to wait for the server (connect, read, write); short, because
        a slow cache is worse than a miss.
    retry_after
        After a failure, seconds during which the cache is skipped (every look-up
        is a miss, every write dropped) before the server is tried again, so an
        outage costs each request nothing rather than a timeout per call.

    A value that does not decode is a miss and is deleted. Values are data,
    never pickles, so a hostile server can serve wrong prices but not run
    code; still keep the server reachable by the cluster only (a private
    network or security group, and a password in the URL).
    """

    name = "redis"
    options = ("url",)
    prefix = "stockdag:"

    @classmethod
    def from_options(cls, url: str | None = None) -> RedisCache:
        if not url:
            raise ValueError("the redis cache backend needs a URL (stockdag.cache.url)")
        return cls(url)

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", socket_timeout: float = 0.5,
                 retry_after: float = 5.0):
        try:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError as exc:  # pragma: no cover - redis is a core dependency
            raise ImportError("the redis cache backend needs the redis client: pip install redis") from exc
        self.url = url
        self.retry_after = retry_after
        self._errors = (redis.exceptions.RedisError, OSError)
        # no client-side retries: the default backs off for seconds on an outage
        self._client = redis.Redis.from_url(
            url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout,
            retry=Retry(NoBackoff(), 0), health_check_interval=30,
        )
        self._lock = threading.Lock()
        self._down_until = 0.0  # time.monotonic() before which the server is not tried
        self._down = False

    def _where(self) -> str:
        kw = self._client.connection_pool.connection_kwargs
        if "path" in kw:
            return f"unix://{kw['path']}"
        return f"{kw.get('host')}:{kw.get('port')}/{kw.get('db', 0)}"  # never the password

    def _available(self) -> bool:
        with self._lock:
            return not self._down or time.monotonic() >= self._down_until

    def _failed(self, what: str, exc: Exception) -> None:
        with self._lock:
            first = not self._down
            self._down, self._down_until = True, time.monotonic() + self.retry_after
        if first:
            logger.warning("redis cache at %s unavailable (%s: %s): fetching from the source, "
                           "retrying the server every %.0f s", self._where(), what, exc, self.retry_after)
        else:
            logger.debug("redis cache at %s still unavailable (%s: %s)", self._where(), what, exc)

    def _succeeded(self) -> None:
        if self._down:
            with self._lock:
                was_down, self._down = self._down, False
            if was_down:
                logger.warning("redis cache at %s is reachable again", self._where())

    def get(self, key):
        if not self._available():
            return None
        try:
            raw = self._client.get(self.prefix + key)
        except self._errors as exc:
            self._failed(f"get {key}", exc)
            return None
        self._succeeded()
        if raw is None:
            return None
        try:
            return decode(raw)
        except UnreadableValue as exc:
            logger.warning("dropping unreadable cache entry %s: %s", key, exc)
            try:
                self._client.delete(self.prefix + key)
            except self._errors as exc2:
                self._failed(f"delete {key}", exc2)
            return None

    def set(self, key, value):
        if not self._available():
            return None
        try:
            self._client.set(self.prefix + key, encode(value))
        except self._errors as exc:  # an outage or a full server must not fail the request
            self._failed(f"set {key}", exc)
            return None
        self._succeeded()

    def clear(self):
        """Delete this cache's entries (``stockdag:*``) only; an unreachable server is left alone."""
        try:
            keys = list(self._client.scan_iter(match=self.prefix + "*", count=500))
            for i in range(0, len(keys), 500):
                self._client.delete(*keys[i:i + 500])
        except self._errors as exc:
            logger.warning("cannot clear redis cache at %s: %s", self._where(), exc)

    def close(self):
        self._client.close()


BACKENDS: dict[str, type[Cache]] = {cls.name: cls for cls in (LRUCache, DiskCache, RedisCache, NoCache)}

_instances: dict[tuple, Cache] = {}
_instances_lock = threading.Lock()


def get_cache(backend: str = "lru", size: int = 256, directory: str | None = None,
              url: str | None = None) -> Cache:
    """The process-wide cache for these settings (created on first use), of the class :data:`BACKENDS` maps
    ``backend`` to, from the settings it names in its ``options``."""
    cls = BACKENDS.get(backend)
    if cls is None:
        raise ValueError(f"unknown cache backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    settings = {"size": size, "directory": directory, "url": url}
    options = {name: settings[name] for name in cls.options}
    key = (backend, *options.values())
    with _instances_lock:
        cache = _instances.get(key)
        if cache is None:
            cache = _instances[key] = cls.from_options(**options)
        return cache


def reset_caches() -> None:
    """Empty and forget every process-wide cache (tests, benchmarks, cold starts)."""
    with _instances_lock:
        for cache in _instances.values():
            cache.clear()
            if isinstance(cache, RedisCache):
                cache.close()  # its connections; a later get_cache makes a new client
        _instances.clear()
