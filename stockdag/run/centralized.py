"""The centralized baseline: one request's stages one after another, no Dask."""
from __future__ import annotations

from ..pipeline.graph import run_stages
from ..pipeline.request import Request
from ..pipeline.result import PredictionResult


def run_whole(request: Request) -> PredictionResult:
    """One request's stages in this process (module level, so a spawned process can unpickle it)."""
    return PredictionResult.from_traced(run_stages(request), CentralizedExecutor.mode, request.request_id, request.pipeline)


class CentralizedExecutor:
    """Runs each request's pipeline sequentially, one request at a time.

    Parameters
    ----------
    isolated : bool
        Run the stages in a spawned process of their own (started here, closed by
        :meth:`close`) instead of the calling one: what a measured baseline needs when
        the caller also hosts a Dask scheduler, a client or a load generator, whose
        threads would share the stages' interpreter (:mod:`stockdag.run.isolated`).
    """

    mode = "centralized"

    def __init__(self, isolated: bool = False):
        self.isolated = isolated
        self._pool = None
        if isolated:
            from .isolated import ctrl_c_left_to_this_process, process_pool, warm

            self._pool = process_pool(1)
            try:
                with ctrl_c_left_to_this_process():  # the process starts at the first submit
                    started = self._pool.submit(warm)
                started.result()
            except BaseException:  # Ctrl-C while it starts: no caller holds this executor to close it
                self.close()
                raise

    def run(self, request: Request) -> PredictionResult:
        if self._pool is None:
            return run_whole(request)
        return self._pool.submit(run_whole, request).result()

    def facts(self) -> dict:
        """Where the stages run: ``isolated`` and :func:`stockdag.run.isolated.process_facts` of that process."""
        from .isolated import process_facts

        facts = self._pool.submit(process_facts).result() if self._pool is not None else process_facts()
        return {"isolated": self.isolated, **facts}

    def close(self) -> None:
        """Shut the isolated process down (if one was started); the executor is unusable afterwards."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
