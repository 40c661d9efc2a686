"""A replicated server is ready only when every replica process has started (Ctrl-C ignored, pipeline imported).

CI once sent Ctrl-C to a replicated server whose /health had answered while its second replica was still
importing: both warm-ups had run in the first process, and the second printed a KeyboardInterrupt traceback.
"""
from __future__ import annotations

import asyncio
import signal

from stockdag.run.isolated import process_pool
from stockdag.serve.backends import _warm_every_process


def _sigint_handler() -> int:
    return int(signal.getsignal(signal.SIGINT) == signal.SIG_IGN)


def test_every_replica_process_answers_the_warmup_before_the_server_is_ready():
    pool = process_pool(3)
    try:
        pids = asyncio.run(_warm_every_process(pool, 3))
        assert len(pids) == 3
        assert pids == set(pool._processes)  # each process of the pool, none still starting
        # each ran its initializer: Ctrl-C is left to the server
        assert all(pool.submit(_sigint_handler).result() for _ in range(6))
    finally:
        pool.shutdown(wait=True)
